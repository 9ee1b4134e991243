#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Counts individual test cases from meson's testlog.json files.

A GTest binary run with --tap counts each TAP line; a pytest file counts each case from the
JUnit XML it wrote; anything else counts as one. A runner that died before reporting its
cases counts as one failure, so a crash is never hidden. Prints "passed failed skipped".
"""
import json
import os
import sys
import xml.etree.ElementTree as ET

passed = failed = skipped = 0


def count_tap(text):
    p = f = s = 0
    for line in text.splitlines():
        line = line.strip()
        if line.startswith('not ok'):
            if '# TODO' in line:
                s += 1
            else:
                f += 1
        elif line.startswith('ok'):
            if '# SKIP' in line.upper():
                s += 1
            else:
                p += 1
    return p, f, s


def count_junit(path):
    p = f = s = 0
    root = ET.parse(path).getroot()
    for case in root.iter('testcase'):
        tags = {child.tag for child in case}
        if 'failure' in tags or 'error' in tags:
            f += 1
        elif 'skipped' in tags:
            s += 1
        else:
            p += 1
    return p, f, s


for log in sys.argv[1:]:
    with open(log) as fh:
        entries = [json.loads(line) for line in fh if line.strip()]
    for e in entries:
        result = e.get('result', 'FAIL')
        ok = result in ('OK', 'EXPECTEDFAIL')
        skip = result == 'SKIP'
        cmd = e.get('command', [])
        junit = next((a.split('=', 1)[1] for a in cmd if a.startswith('--junitxml=')), None)
        if junit:
            if os.path.exists(junit) and os.path.getmtime(junit) >= e.get('starttime', 0) - 1:
                p, f, s = count_junit(junit)
                if not ok and f == 0:
                    f = 1  # pytest failed outside any case (collection, fixture teardown)
            else:
                p, f, s = (0, 0, 1) if skip else (0, 1, 0)
        elif '--tap' in cmd:
            p, f, s = count_tap(e.get('stdout', ''))
            if not ok and f == 0:
                f = 1  # the binary crashed or exited non-zero
            if ok and p + f + s == 0:
                s = 1
        else:
            p, f, s = (1, 0, 0) if ok else ((0, 0, 1) if skip else (0, 1, 0))
        passed += p
        failed += f
        skipped += s

print(passed, failed, skipped)
