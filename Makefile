# Trillium - top-level commands. `make run` and `make test` do all set-up themselves
# on a fresh Debian 12 machine (apt packages), then build what they need.
#
#   make run     build, convert the default model (stories260K) and generate text with the Node CLI
#   make test    build everything and run every test (native, ASan+UBSan, wasm under Node, golden)
#   make deps    only install what is missing

PYTHON  ?= /usr/bin/python3
JOBS    ?= 2
BUILD   ?= build
PROMPT  ?= Once upon a time
TOKENS  ?= 120

NATIVE  := $(BUILD)/native
ASAN    := $(BUILD)/asan
WASM    := $(BUILD)/wasm
CONVERT := $(NATIVE)/converter/trillium-convert
PACK    := $(BUILD)/packs/stories260K
WASM_OUT:= web/dist/trillium.wasm

export NODE_PATH := /usr/share/nodejs

.PHONY: all deps native asan wasm pack run test test-native test-asan test-wasm test-js test-reference \
        test-golden clean demo test-e2e fuzz test-fuzz bench bench-kernels bench-kernels-browser bench-wllama

all: native wasm

# Install only what is missing, so a ready machine pays nothing.
deps:
	@missing=""; \
	command -v cmake >/dev/null || missing="$$missing cmake"; \
	command -v gcc >/dev/null || missing="$$missing gcc"; \
	command -v clang >/dev/null || missing="$$missing clang"; \
	command -v emcc >/dev/null || missing="$$missing emscripten"; \
	command -v wasm-opt >/dev/null || missing="$$missing binaryen"; \
	command -v wasm-objdump >/dev/null || missing="$$missing wabt"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	$(PYTHON) -c 'import numpy' 2>/dev/null || missing="$$missing python3-numpy"; \
	test -f /usr/include/lapacke.h || missing="$$missing liblapacke-dev"; \
	ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1 || missing="$$missing libclang-rt-14-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

native: deps
	cmake -S . -B $(NATIVE) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(NATIVE) -j$(JOBS)

asan: deps
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DTRL_SANITIZE=ON >/dev/null
	cmake --build $(ASAN) -j$(JOBS)

# The wasm module is built by emcmake and post-optimised by Binaryen (wasm_glue/CMakeLists.txt),
# then copied into the npm package's dist/.
wasm: deps
	emcmake cmake -S . -B $(WASM) -DCMAKE_BUILD_TYPE=Release -DCMAKE_CROSSCOMPILING_EMULATOR=/usr/bin/node >/dev/null
	cmake --build $(WASM) -j$(JOBS)
	mkdir -p web/dist
	cp $(WASM)/wasm_glue/trillium.wasm $(WASM_OUT)
	cp $(WASM)/wasm_glue/trillium-relaxed.wasm web/dist/trillium-relaxed.wasm

$(PACK)/manifest.json: native models/stories260K/stories260K.bin models/stories260K/tok512.bin
	$(CONVERT) models/stories260K/stories260K.bin --tokenizer models/stories260K/tok512.bin \
	  --name stories260K -o $(PACK) --force

pack: $(PACK)/manifest.json

run: wasm pack
	@echo "model: stories260K (trained on TinyStories; llama2.c, MIT) - small, but real English"
	@echo "node web/bin/trillium.js run $(PACK) --prompt \"$(PROMPT)\" --max-tokens $(TOKENS)"
	@printf '%s' "$(PROMPT)"
	@node web/bin/trillium.js run $(PACK) --prompt "$(PROMPT)" --max-tokens $(TOKENS)

test: deps
	$(MAKE) native asan wasm
	$(MAKE) test-native test-asan test-wasm test-reference test-golden test-js test-e2e test-fuzz
	@echo "make test: all suites passed"

test-native:
	ctest --test-dir $(NATIVE) --output-on-failure -j$(JOBS)

test-asan:
	ctest --test-dir $(ASAN) --output-on-failure -j$(JOBS)

# (the wasm tests labelled "browser" run in Chromium: test-e2e runs them)
test-wasm:
	ctest --test-dir $(WASM) --output-on-failure -j$(JOBS) -LE browser

test-reference:
	$(PYTHON) tests/reference/test_reference.py

test-golden: pack
	$(PYTHON) tests/golden/run_golden.py --build $(NATIVE) --work $(BUILD)/golden

test-js: pack
	TRL_CONVERT=$(CONVERT) TRL_WASM=$(WASM_OUT) TRL_PACK=$(PACK) node --test tests/js/

# The chat demo and offline PWA (demo/): builds what is missing, assembles the static site
# in build/demo/site (demo/ + web/src + web/dist + the pack) and serves it on
# http://127.0.0.1:8080 with COOP/COEP (Ctrl+C stops; any static host can serve the same files).
demo:
	@test -f $(WASM_OUT) -a -f web/dist/trillium-mt.wasm || $(MAKE) wasm
	@test -f $(PACK)/manifest.json || $(MAKE) pack
	node demo/build.mjs --out $(BUILD)/demo/site --pack stories260K=$(PACK)
	node demo/serve.mjs $(BUILD)/demo/site --port 8080

# Browser end-to-end tests of the demo in Debian's headless Chromium, driven by playwright-core
# (from npm, into demo/node_modules; it never downloads a browser).
test-e2e:
	@command -v chromium >/dev/null || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }
	@test -f demo/node_modules/playwright-core/package.json || (cd demo && npm ci --no-audit --no-fund)
	@test -f $(WASM_OUT) -a -f web/dist/trillium-mt.wasm -a -f web/dist/trillium-relaxed.wasm \
	  -a -f web/dist/trillium-mt-relaxed.wasm || $(MAKE) wasm
	@test -f $(PACK)/manifest.json -a -x $(CONVERT) || $(MAKE) pack
	TRL_CONVERT=$(CONVERT) TRL_PACK=$(PACK) node --test --test-concurrency=1 tests/e2e/
	ctest --test-dir $(WASM) --output-on-failure -L browser

# libFuzzer targets for the file readers (fuzz/README.md): built with clang (ASan + UBSan) in
# $(BUILD)/fuzz, each run for FUZZ_SECONDS on its committed seeds (fuzz/corpus/); new inputs and
# crash reproducers stay in $(BUILD)/fuzz. test-fuzz: 10 s each, for make test.
FUZZ_SECONDS ?= 60
fuzz:
	CC=clang cmake -S fuzz -B $(BUILD)/fuzz >/dev/null
	cmake --build $(BUILD)/fuzz -j$(JOBS)
	fuzz/run.sh $(BUILD)/fuzz $(FUZZ_SECONDS)

test-fuzz:
	$(MAKE) fuzz FUZZ_SECONDS=10

# Benchmarks (docs/BENCHMARKS.md): the kernel table natively, in wasm under Node and in headless
# Chromium, then the Node CLI end to end on a synthetic 134M-parameter model in t2, q8_0 and f32.
# Minutes, not seconds.
bench: native wasm
	$(MAKE) bench-kernels
	test -f $(BUILD)/bench/synth-100m/model.safetensors || $(PYTHON) bench/make_synthetic.py $(BUILD)/bench/synth-100m --size 100m
	$(CONVERT) $(BUILD)/bench/synth-100m -o $(BUILD)/bench/synth-100m-t2 --ternary --act-quant int8 --dtype q8_0 --force
	$(CONVERT) $(BUILD)/bench/synth-100m -o $(BUILD)/bench/synth-100m-q8 --dtype q8_0 --force
	$(CONVERT) $(BUILD)/bench/synth-100m -o $(BUILD)/bench/synth-100m-f32 --force
	for p in t2 q8 f32; do node web/bin/trillium.js bench $(BUILD)/bench/synth-100m-$$p --json --no-cache \
	  --prompt-tokens 64 --gen-tokens 32 --repeats 3; done
	$(MAKE) bench-wllama

# The kernel table (bench/kernels/README.md): native, wasm under Node (bench-kernels-browser adds
# wasm in headless Chromium), 1 and 2 threads each, JSON lines in $(BUILD)/bench/{native,wasm,
# chromium}{,-mt}.json, the markdown table on stdout. KBENCH_ARGS go to every bench-kernels run,
# e.g. KBENCH_ARGS="--quick --shapes 4096x4096" (default: 1 s of timed calls per case, best of them).
KBENCH_ARGS ?= --min-time 1
KBENCH_BIN  := $(BUILD)/bench-wasm/bench/kernels
bench-kernels:
	cmake -S . -B $(BUILD)/bench -DCMAKE_BUILD_TYPE=Release -DTRL_BUILD_BENCH=ON >/dev/null
	cmake --build $(BUILD)/bench -j$(JOBS) --target bench-kernels
	emcmake cmake -S . -B $(BUILD)/bench-wasm -DCMAKE_BUILD_TYPE=Release -DTRL_BUILD_BENCH=ON \
	  -DCMAKE_CROSSCOMPILING_EMULATOR=/usr/bin/node >/dev/null
	cmake --build $(BUILD)/bench-wasm -j$(JOBS) --target bench-kernels bench-kernels-mt
	$(BUILD)/bench/bench/kernels/bench-kernels $(KBENCH_ARGS) > $(BUILD)/bench/native.json
	$(BUILD)/bench/bench/kernels/bench-kernels $(KBENCH_ARGS) --threads 2 > $(BUILD)/bench/native-mt.json
	node $(KBENCH_BIN)/bench-kernels.js $(KBENCH_ARGS) > $(BUILD)/bench/wasm.json
	node $(KBENCH_BIN)/bench-kernels-mt.js $(KBENCH_ARGS) --threads 2 > $(BUILD)/bench/wasm-mt.json
	$(MAKE) bench-kernels-browser

# The wasm column in headless Chromium (/usr/bin/chromium via bench/node_modules/playwright-core:
# cd bench && npm install), in a module Worker, 1 and 2 threads; then the table of every
# $(BUILD)/bench/*.json that exists.
bench-kernels-browser:
	emcmake cmake -S . -B $(BUILD)/bench-wasm -DCMAKE_BUILD_TYPE=Release -DTRL_BUILD_BENCH=ON \
	  -DCMAKE_CROSSCOMPILING_EMULATOR=/usr/bin/node >/dev/null
	cmake --build $(BUILD)/bench-wasm -j$(JOBS) --target bench-kernels-web bench-kernels-web-mt
	node bench/kernels/browser.mjs --build-dir $(BUILD)/bench-wasm --out-dir $(BUILD)/bench --threads 1,2 \
	  -- $(KBENCH_ARGS)
	$(PYTHON) bench/kernels/table.py $(foreach f,native native-mt wasm wasm-mt chromium chromium-mt,$(BUILD)/bench/$(f).json) \
	  | tee $(BUILD)/bench/kernels.md

# Trillium vs wllama (llama.cpp in wasm, @wllama/wllama pinned in bench/package.json) on the same
# GGUF weights in headless Chromium (bench/wllama/README.md): synthetic 100M/700M GGUFs by
# bench/make_gguf.py in $(BUILD)/bench/wllama (kept between runs), the packs converted from them,
# then docs/bench/wllama.{json,svg} and the table in $(BUILD)/bench/wllama/table.md. ~40 minutes.
WLLAMA_DIR  := $(BUILD)/bench/wllama
WLLAMA_PLAN ?= 100m:tq2_0,q4_0:2:1,2;100m:tq1_0,q8_0,f16:1:1,2;700m:tq2_0,q4_0:1:1
bench-wllama: native wasm
	@test -f bench/node_modules/@wllama/wllama/package.json -a -f bench/node_modules/playwright-core/package.json \
	  || (cd bench && npm ci --no-audit --no-fund)
	$(PYTHON) bench/make_gguf.py $(WLLAMA_DIR) --size 100m --convert $(CONVERT) --variants bcq2,lowrank
	$(PYTHON) bench/make_gguf.py $(WLLAMA_DIR) --size 700m --types tq2_0,q4_0 --convert $(CONVERT)
	node bench/wllama/bench.mjs --dir $(WLLAMA_DIR) --plan '$(WLLAMA_PLAN)' --variants bcq2,lowrank \
	  --out docs/bench/wllama.json
	node bench/wllama/native.mjs $(WLLAMA_DIR)/synth-100m-tq2_0 $(WLLAMA_DIR)/synth-100m-q8_0 \
	  $(WLLAMA_DIR)/synth-700m-tq2_0 --out docs/bench/wllama-native.json
	node bench/wllama/report.mjs docs/bench/wllama.json --svg docs/bench/wllama.svg | tee $(WLLAMA_DIR)/table.md

clean:
	rm -rf $(BUILD) web/dist
