"""Names of the records and state entries that fedmood's apps keep on a device or exchange.

Defined once here, at the bottom of the package, so that the apps, the client mods and the
privacy audit all spell them the same way without importing each other.
"""

#: The ``context.state`` record holding the user's own (never shared) parameters on a device.
LOCAL_STATE_KEY = "user-state"
#: The device's own fine-tuned copy of the item parameters, if any.
PERSONAL_ITEMS_KEY = "personal-items"
#: Config key: which run the device's stored user state belongs to.
RUN_KEY = "run-key"

# ---- the metrics a client sends with its reply (a MetricRecord); one spelling each
#: The weight of a client's update (Flower's convention).
NUM_EXAMPLES = "num-examples"
#: The device's training rows, and its validation rows.
TRAIN_ROWS, VAL_ROWS = "train-rows", "val-rows"
#: The training MSE of the device's last local epoch; a validation MSE (the legacy evaluate reply).
TRAIN_MSE, VAL_MSE = "train-mse", "val-mse"
#: Sum of squared validation errors and validation rows: the server pools them into one MSE.
VAL_SSE, VAL_N = "val-sse", "val-n"
#: Seconds spent in the train handler and in the training loop (summed over clients).
CLIENT_SECONDS, FIT_SECONDS = "client-seconds", "fit-seconds"
#: A DP-SGD device's ε, δ and noise multiplier so far.
DPSGD_EPSILON, DPSGD_DELTA, DPSGD_NOISE = "dpsgd-epsilon", "dpsgd-delta", "dpsgd-noise"
DPSGD_PREFIX = "dpsgd-"
#: A personalisation report: the device's index, its validation MSE before and after fine-tuning.
USER, VAL_MSE_BEFORE, VAL_MSE_AFTER = "user", "val-mse-before", "val-mse-after"


def column(key: str) -> str:
    """A sent key as a results-table column (``val-mse-before`` -> ``val_mse_before``)."""
    return key.replace("-", "_")


def spread(key: str, stat: str) -> str:
    """The name of an aggregate over clients of a per-client value: ``<key>-max`` or ``<key>-mean``."""
    return f"{key}-{stat}"
