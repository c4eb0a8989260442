# confab — operator entry points. `make` alone prints this help.
.DEFAULT_GOAL := help
.PHONY: help run test fmt lint

help: ## Show this help
	@echo "confab make targets:"
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  make %-6s %s\n", $$1, $$2 }'

run: ## Install what is missing, then run the server (release; args: make run ARGS="...")
	scripts/run.sh $(ARGS)

test: ## Run every test (starts a throwaway Postgres)
	scripts/test.sh

fmt: ## Format all Rust code
	cargo fmt --all

lint: ## Check formatting and run clippy with warnings as errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
