# SanaGraph — build, demo, tests, fixtures, benchmarks.
#   make demo      install missing system packages, build, render a demo graph
#   make test      install missing system packages, run the whole test suite (release), hostile-input suite included
#   make fuzz      the hostile-input suite with many more generated cases (FUZZ_ITERATIONS, FUZZ_SEED)
#   make fixtures  regenerate test fixtures with the Python reference scripts (never run by CI)
#   make bench     benchmarks (compare with PyTorch on this machine; PYTHON=…, BENCH_ARGS=--quick)
#   make reference-venv  create the pinned Python reference venv (outside the repo) used by fixtures/bench
#   make bundle    static GPU bundle (sanagraph-cuda) for hosts with only the NVIDIA driver; prints its path last
#   make test-cuda GPU checks (prints "skipped: no CUDA driver" without a GPU); make bench-cuda: the whole
#                  graph vs diffusers' SanaPipeline; make bench-cuda-dit / -dcae: the DiT / DC-AE decoder vs diffusers,
#                  make bench-cuda-gemma: the Gemma-2 encoder vs transformers (docs/cuda.md)
# Run as root or as a user with sudo (only needed when a package is missing).

SWIFT      ?= swift
# The Python reference (pinned versions) lives in a venv outside the repository.
REF_VENV   ?= $(HOME)/.cache/sanagraph/reference-venv
PYTHON     ?= $(REF_VENV)/bin/python
# peft (+ accelerate): the PEFT backend diffusers' load_lora_weights needs (tools/reference/lora_pipeline.py).
REF_PACKAGES := torch==2.15.0 diffusers==0.42.1 transformers==5.24.0 safetensors sentencepiece protobuf pillow numpy \
              peft==0.21.2 accelerate==1.16.0
CONFIG     ?= release
BIN        := .build/$(CONFIG)/sanagraph
# Debian packages the build needs: OpenBLAS and oneDNN (opened at run time, Sources/Tensors/Kernels.swift;
# libdnnl-dev brings the dnnl.h header the C shim compiles against and libdnnl2), libpng (CPNG shim),
# pkg-config (finds libpng).
APT_PACKAGES := libopenblas-dev libdnnl-dev libpng-dev pkg-config
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_GRAPH := Graphs/text2img.yaml
SMOKE_GRAPH := Graphs/smoke.yaml

.PHONY: all deps build demo test fuzz fixtures bench clean reference-venv bundle test-cuda test-cuda-emulated bench-cuda bench-cuda-dit \
        bench-cuda-gemma bench-cuda-dcae

all: build

# Installs only what is missing (dpkg -s), so it is fast and needs no root when nothing is.
deps:
	@command -v $(SWIFT) >/dev/null 2>&1 || { echo "error: '$(SWIFT)' not found; install a Swift 6 toolchain (https://www.swift.org/install/linux/)" >&2; exit 1; }
	@if command -v dpkg >/dev/null 2>&1; then \
	  missing=""; \
	  for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing missing packages:$$missing"; \
	    $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	  fi; \
	else \
	  echo "note: not a Debian system; make sure OpenBLAS, oneDNN 2.x (dnnl.h, libdnnl.so.2), libpng and pkg-config are installed" >&2; \
	fi

build: deps
	$(SWIFT) build -c $(CONFIG)

# The demo renders the shipped model (models/sana-shapes) at its defaults; PROMPT="..." and SEED=N change them.
DEMO_OUT   := out/demo/text2img.png
PROMPT     ?= a red circle above a blue square on a white background
SEED       ?= 0
demo: build
	@if [ -f $(DEMO_GRAPH) ]; then \
	  rm -f $(DEMO_OUT); \
	  $(BIN) run $(DEMO_GRAPH) --set "prompt=$(PROMPT)" --set seed=$(SEED) --set output=$(DEMO_OUT) \
	    || { rc=$$?; [ $$rc = 4 ] && echo "the demo graph needs model weights (models/sana-shapes): see README.md and docs/graphs.md"; exit $$rc; }; \
	  echo "demo picture: $(DEMO_OUT)  (prompt: \"$(PROMPT)\", seed $(SEED); more in docs/graphs.md)"; \
	elif [ -f $(SMOKE_GRAPH) ]; then \
	  echo "$(DEMO_GRAPH) is not there yet; running $(SMOKE_GRAPH) instead"; \
	  $(BIN) run $(SMOKE_GRAPH) && echo "smoke graph ran: see out/smoke/"; \
	else \
	  echo "no demo graph yet ($(DEMO_GRAPH) or $(SMOKE_GRAPH)); the build works: try '$(BIN) nodes'"; \
	fi

# The numeric suites run a second time on the most generic kernels (SANAGRAPH_CPU=generic: OpenBLAS's SSE3
# Prescott core, oneDNN capped at SSE4.1, bf16 off), the path a CPU model nobody knows would get.
GENERIC_TESTS := TensorsTests|LinearDiTTests|DCAETests|TextEncoderTests|FlowSolversTests|UpscalerTests
test: deps
	$(SWIFT) test -c $(CONFIG)
	SANAGRAPH_CPU=generic $(SWIFT) test -c $(CONFIG) --skip-build --filter '$(GENERIC_TESTS)'

# Tests/CLITests/HostileInputTests.swift with more cases per class (6 under `make test`); a failure names its seed.
FUZZ_ITERATIONS ?= 60
FUZZ_SEED ?= 23
fuzz: deps
	SANAGRAPH_FUZZ_ITERATIONS=$(FUZZ_ITERATIONS) SANAGRAPH_FUZZ_SEED=$(FUZZ_SEED) \
	  $(SWIFT) test -c $(CONFIG) --filter HostileInputTests

reference-venv:
	python3 -m venv $(REF_VENV)
	$(REF_VENV)/bin/pip install $(REF_PACKAGES)

# Each generator regenerates its fixtures with a fixed seed; run from the repository root.
fixtures:
	@set -e; for script in tools/reference/*.py; do \
	  echo "== $$script"; $(PYTHON) $$script; \
	done

# Kernels, then models (DiT load/forward; DC-AE, Gemma, text2img once registered), each side by side with
# PyTorch on the same shapes (docs/performance.md). BENCH_ARGS=--quick skips the 1024 px rows.
BENCH_ARGS ?=
bench: build
	PYTHON="$(PYTHON)" tools/bench/kernels.sh
	PYTHON="$(PYTHON)" tools/bench/models.sh $(BENCH_ARGS)

# CUDA backend (docs/cuda.md). The bundle's last output line is its path.
bundle: deps
	@tools/bundle/build.sh .build-bundle

# GPU checks: every kernel and the GPU DiT against the CPU code; without a driver prints "skipped: no CUDA driver".
test-cuda: deps
	$(SWIFT) build -c $(CONFIG) --product sanagraph-cuda
	.build/$(CONFIG)/sanagraph-cuda test

# The same checks with no GPU: the project's CUDA C kernels and the driver/NVRTC/cuBLASLt calls run on a CPU
# emulator (tools/cuda-emulator: fake libcuda/libnvrtc/libcublasLt). Checks logic and indexing, not speed.
test-cuda-emulated: deps
	$(SWIFT) build -c $(CONFIG) --product sanagraph-cuda
	@emu=$$(tools/cuda-emulator/build.sh .build-emulator) && \
	  SANAGRAPH_CUDA_DRIVER=$$emu/libcuda.so.1 SANAGRAPH_CUDA_LIBRARY_PATH=$$emu SANAGRAPH_CUDA_CACHE=$$emu/kernel-cache \
	  .build/$(CONFIG)/sanagraph-cuda test

# The whole text2img graph on one GPU (`sanagraph run --device cuda`) vs diffusers' SanaPipeline eager bf16 and
# torch.compile on the same GPU: sampling + decode, DiT / VAE / text encoder, time to first image, GPU memory
# (needs torch + diffusers in $(PYTHON) and a GPU; builds the random full-size pipeline once, ~10 GB).
CUDA_PIPELINE_ARGS ?= --reps 3 --compile
bench-cuda: deps
	$(SWIFT) build -c $(CONFIG) --product sanagraph
	$(PYTHON) tools/bench/cuda_pipeline.py --sanagraph .build/$(CONFIG)/sanagraph $(CUDA_PIPELINE_ARGS)

# DiT forward vs diffusers eager bf16 on the same GPU (needs torch + diffusers in $(PYTHON) and a GPU).
CUDA_BENCH_ARGS ?= --sizes 1024,512 --reps 20
bench-cuda-dit: deps
	$(SWIFT) build -c $(CONFIG) --product sanagraph-cuda
	$(PYTHON) tools/bench/cuda_dit.py --binary .build/$(CONFIG)/sanagraph-cuda $(CUDA_BENCH_ARGS)

# Gemma-2-2B text encoder vs transformers eager bf16 on the same GPU (needs torch + transformers and a GPU).
bench-cuda-gemma: deps
	$(SWIFT) build -c $(CONFIG) --product sanagraph-cuda
	$(PYTHON) tools/bench/cuda_gemma.py --binary .build/$(CONFIG)/sanagraph-cuda --reps 20

# DC-AE f32c32 decode vs diffusers eager bf16 on the same GPU (needs torch + diffusers in $(PYTHON) and a GPU).
bench-cuda-dcae: deps
	$(SWIFT) build -c $(CONFIG) --product sanagraph-cuda
	$(PYTHON) tools/bench/cuda_dcae.py --binary .build/$(CONFIG)/sanagraph-cuda $(CUDA_DCAE_ARGS)

clean:
	rm -rf .build .build-examples .build-bundle .build-emulator
