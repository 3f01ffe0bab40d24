# StackBE developer commands. Everything runs through uv; `make install` is implied.
UV ?= uv
PYTEST_ARGS ?=

.PHONY: install dev test lint fmt bench bootstrap-uv

bootstrap-uv:
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet uv

install: bootstrap-uv
	@$(UV) sync --frozen --quiet

## dev: run the whole platform locally (Postgres and NATS found or started), print the URL
dev: install
	@$(UV) run python -m stackbe_common.devstack

## test: the whole suite on real Postgres and real NATS
test: install
	$(UV) run pytest -n auto --dist loadfile -q $(PYTEST_ARGS)

## bench: the platform's speed on this machine, as ratios to floors run beside it
bench: install
	$(UV) run python -m bench $(BENCH_ARGS)

## lint: ruff and mypy
lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy libs/common/src libs/events/src services/identity/src services/catalog/src services/subscriptions/src services/entitlements/src services/webhooks/src services/gateway/src bench

## fmt: format and fix what ruff can
fmt: install
	$(UV) run ruff format .
	$(UV) run ruff check --fix .
