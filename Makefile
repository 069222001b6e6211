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
        test-golden clean

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
	$(MAKE) test-native test-asan test-wasm test-reference test-golden test-js
	@echo "make test: all suites passed"

test-native:
	ctest --test-dir $(NATIVE) --output-on-failure -j$(JOBS)

test-asan:
	ctest --test-dir $(ASAN) --output-on-failure -j$(JOBS)

test-wasm:
	ctest --test-dir $(WASM) --output-on-failure -j$(JOBS)

test-reference:
	$(PYTHON) tests/reference/test_reference.py

test-golden: pack
	$(PYTHON) tests/golden/run_golden.py --build $(NATIVE) --work $(BUILD)/golden

test-js: pack
	TRL_CONVERT=$(CONVERT) TRL_WASM=$(WASM_OUT) TRL_PACK=$(PACK) node --test tests/js/

clean:
	rm -rf $(BUILD) web/dist
