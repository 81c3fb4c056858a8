# fedmood: `make run` (the main job) and `make test` (the tests) each bootstrap .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-slow lint report bench bench-privacy bench-inputs bench-data bench-deploy sweep-privacy sweep-attacks deploy clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0   # always first, exactly this pin (CPU wheel)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(PY) experiments/mood.py

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check .

report: $(STAMP)   # one page of every study found in results/ (results/report/report.md)
	$(PY) -m fedmood.report results/

bench: $(STAMP)
	$(PY) benchmarks/mood_fed_vs_central.py
	$(PY) benchmarks/privacy_overhead.py
	$(PY) benchmarks/suggestions.py

bench-privacy: $(STAMP)   # attacks on every privacy mechanism, the audits, MetaMF (12 min on 2 cores)
	$(PY) benchmarks/privacy_attacks.py

bench-deploy: $(STAMP)   # a deployed round (10 SuperNodes, TLS + node auth) against a simulated one (15 min on 2 cores)
	$(PY) benchmarks/deploy.py --also-flower

bench-inputs: $(STAMP)   # every bad input against every entry point, as a user would (7 min on 2 cores)
	$(PY) benchmarks/bad_inputs.py

bench-data: $(STAMP)   # the benchmarks on the real data sets in ../shared/data
	$(PY) benchmarks/metamf_speed.py
	$(PY) benchmarks/metamf_federated_bytes.py
	$(PY) benchmarks/aae.py
	$(PY) benchmarks/topics.py

deploy: $(STAMP)   # a real local federation: SuperLink + 3 SuperNodes (TLS, node auth, encrypted stores)
	$(PY) -m fedmood.deploy run --nodes 3 --rounds 10

sweep-privacy: $(STAMP)
	$(PY) experiments/privacy_utility.py -m

sweep-attacks: $(STAMP)   # mechanism x epsilon x clients per round: attacks.csv and figures/attacks.png
	$(PY) experiments/privacy_attacks.py -m

clean:
	rm -rf $(VENV) .cache results
