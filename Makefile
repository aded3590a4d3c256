# `make demo [CLIP=path/to/clip.mp4]` and `make test`: the README's two commands.
.PHONY: setup demo test lint bench bench-store

setup:
	./scripts/setup

demo: setup
	.venv/bin/facegate demo $(if $(CLIP),--video "$(CLIP)")

test: setup
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench: setup
	.venv/bin/python benchmarks/face_pipeline.py

bench-store: setup
	.venv/bin/python benchmarks/store.py
