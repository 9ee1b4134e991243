#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# run-fuzzer.sh FUZZER NAME CORPUS DICT WORKDIR: runs one libFuzzer target for
# $IMAPFS_FUZZ_SECONDS (default 20) from the committed corpus. Any crash fails the test and
# leaves the reproducer in WORKDIR.
set -eu
fuzzer=$1 name=$2 corpus=$3 dict=$4 work=$5
mkdir -p "$work/new" "$work/artifacts"
dictarg=""
[ -f "$dict" ] && dictarg="-dict=$dict"
exec "$fuzzer" -max_total_time="${IMAPFS_FUZZ_SECONDS:-20}" -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 -artifact_prefix="$work/artifacts/" $dictarg "$work/new" "$corpus"
