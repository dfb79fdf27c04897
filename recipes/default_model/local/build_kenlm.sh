#!/usr/bin/env bash
# Build KenLM's lmplz and build_binary (the n-gram estimator and its binary format, which the
# PyPI module `kenlm` does not include) into tools/kenlm/bin, from the kenlm sdist on PyPI:
# the same source the project's `kenlm` module is built from.
#
#   bash local/build_kenlm.sh            # ~1 min on 2 cores
#
# Needs cmake, g++ and Boost (Debian: cmake g++ libboost-program-options-dev libboost-system-dev
# libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev). ESPnet users may have
# them already (espnet/tools/installers/install_kenlm.sh): pass run.sh --kenlm_bin DIR instead.
set -euo pipefail
version=0.3.0
sha256=c4628bb9fb63c8a6f9240035b8b037385cfc404cb72e933cf48878291edac1e8   # PyPI's, for 0.3.0
out=tools/kenlm
if [ -x $out/bin/lmplz ] && [ -x $out/bin/build_binary ]; then echo "$out/bin: built already"; exit 0; fi
mkdir -p $out/src
# the sdist's address from PyPI's simple index (pip download would build the module's metadata first)
url=$(curl -fsS https://pypi.org/simple/kenlm/ | grep -o "https://[^\"#]*/kenlm-$version.tar.gz" | head -1)
curl -fsS -o $out/kenlm-$version.tar.gz "$url"
echo "$sha256  $out/kenlm-$version.tar.gz" | sha256sum -c --quiet
tar -xzf $out/kenlm-$version.tar.gz -C $out/src --strip-components 1
cmake -S $out/src -B $out/build -DCMAKE_BUILD_TYPE=Release > $out/cmake.log 2>&1
cmake --build $out/build --target lmplz build_binary -j "$(nproc)" > $out/build.log 2>&1  # compiler warnings: the log
mkdir -p $out/bin && cp $out/build/bin/lmplz $out/build/bin/build_binary $out/bin/
echo "$out/bin: lmplz, build_binary"
