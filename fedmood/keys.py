"""Names of the records and state entries that fedmood's apps keep on a device or exchange.

Defined once here, at the bottom of the package, so that the apps, the client mods and the
privacy audit all spell them the same way without importing each other.
"""

#: The ``context.state`` record holding the user's own (never shared) parameters on a device.
LOCAL_STATE_KEY = "user-state"
