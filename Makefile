# The two commands of the README's quick start:
#   make run   installs Strongroom and runs the main job on the embedded default
#              (a local directory vault + SQLite under ./var): sample ingest + verify
#   make test  installs everything the tests need and runs the whole suite (CI runs this)

.PHONY: run test lint unit bench clean

run:
	scripts/bootstrap.sh
	.venv/bin/strongroom --vault ./var/vault demo

test:
	scripts/bootstrap.sh --test
	.venv/bin/ruff check .
	.venv/bin/mypy
	STRONGROOM_REQUIRE_S3=1 STRONGROOM_REQUIRE_SERVERS=1 .venv/bin/python -m pytest -q -p no:cacheprovider

lint:
	.venv/bin/ruff check .
	.venv/bin/mypy

unit:
	.venv/bin/python -m pytest -q -m "not slow"

bench:
	.venv/bin/python benchmarks/run_all.py

clean:
	rm -rf var benchmarks/out .pytest_cache .mypy_cache .ruff_cache
