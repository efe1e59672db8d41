# One way to run things, shared by developers and CI (scripts/ hold the logic).
.PHONY: run test lint bench soak attack cluster cluster-stop clean

run:            ## set up and run the hub with three simulated EA Bridges
	@scripts/run

test:           ## set up and pass the whole suite: ruff, mypy, pytest on real Redis + Postgres
	@scripts/test

lint:           ## ruff + mypy only
	@scripts/setup && .venv/bin/ruff check hub channels tests && .venv/bin/ruff format --check hub channels tests && .venv/bin/mypy

bench:          ## benchmarks (BENCHMARKS.md)
	@scripts/setup && .venv/bin/python -m bench

DURATION ?= 1800

soak:           ## soak (DURATION s, default 1800): subscribers, trading, a fault a minute (docs/reliability.md)
	@scripts/setup && .venv/bin/python -m bench.soak --duration $(DURATION) --subscribers 200

cluster:        ## docs/deploy.md on this machine: Redis, Postgres, 3 simulated bridges, 2 hubs, nginx (TLS)
	@deploy/cluster.sh start

cluster-stop:   ## stop what `make cluster` started
	@deploy/cluster.sh stop

attack:         ## long model-based attack on trading (tests/hub/trading/test_attack.py), 10 000 steps
	@MT4HUB_ATTACK_STEPS=$${MT4HUB_ATTACK_STEPS:-10000} scripts/test tests/hub/trading/test_attack.py -m slow -s

clean:
	@[ ! -d .cluster ] || deploy/cluster.sh stop
	rm -rf .venv .services .cluster data .pytest_cache .mypy_cache .ruff_cache
