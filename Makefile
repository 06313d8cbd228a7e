# The project's commands. `make demo` and `make test` work on a fresh machine.
.PHONY: demo test venv images images-gpu compile check lint bench clean

demo:          ## run the main job: the gated pipeline end to end, locally
	bash scripts/demo.sh $(ARGS)

test:          ## run every test (host, runtime image, local pipelines)
	bash scripts/test.sh

venv:          ## create the host SDK environment (.venv)
	bash scripts/setup-venv.sh

images:        ## build the CPU runtime image (Docker and the base image set up when missing)
	bash scripts/build-images.sh

images-gpu:    ## build the runtime and GPU trainer images
	bash scripts/build-images.sh --gpu

compile: venv  ## compile every pipeline to its golden spec
	.venv/bin/python compile.py

check: venv    ## fail when a compiled spec is stale
	.venv/bin/python compile.py --check

lint: venv
	.venv/bin/ruff check .

bench: venv images  ## run every benchmark side by side and print ratios
	bash scripts/bench.sh

clean:
	rm -rf local_outputs .pytest_cache .ruff_cache
