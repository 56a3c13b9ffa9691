#!/usr/bin/env python3
"""Checks that no two C files call into each other, directly or through others.

Reads the built objects of src/ (run after the build): an object that uses a
symbol another object defines calls into that file.  Every strongly connected
set of more than one file is a circle, printed with the symbols of each
arrow; the check fails when there is one.
"""
import glob
import os
import subprocess
import sys

src = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src')
objects = sorted(glob.glob(os.path.join(src, '*.o')))
if not objects:
    sys.exit('layering: no objects in src/; build first (make)')

defined, used = {}, {}
for path in objects:
    name = os.path.basename(path)[:-2]
    out = subprocess.run(['nm', path], capture_output=True, text=True, check=True).stdout
    defined[name], used[name] = set(), set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == 'U':
            used[name].add(fields[1])
        elif len(fields) == 3 and fields[1] in 'TDBCR':
            defined[name].add(fields[2])

owner = {symbol: name for name, symbols in defined.items() for symbol in symbols}
arrows = {name: {} for name in defined}
for name, symbols in used.items():
    for symbol in symbols:
        target = owner.get(symbol)
        if target and target != name:
            arrows[name].setdefault(target, []).append(symbol)

# Tarjan's strongly connected components
index, low, stack, on_stack, circles, counter = {}, {}, [], set(), [], [0]


def visit(node):
    index[node] = low[node] = counter[0]
    counter[0] += 1
    stack.append(node)
    on_stack.add(node)
    for target in arrows[node]:
        if target not in index:
            visit(target)
            low[node] = min(low[node], low[target])
        elif target in on_stack:
            low[node] = min(low[node], index[target])
    if low[node] == index[node]:
        component = []
        while True:
            member = stack.pop()
            on_stack.discard(member)
            component.append(member)
            if member == node:
                break
        if len(component) > 1:
            circles.append(sorted(component))


sys.setrecursionlimit(10000)
for node in sorted(arrows):
    if node not in index:
        visit(node)

if circles:
    for circle in circles:
        print('layering: these files call into each other: ' + ', '.join(f + '.c' for f in circle))
        for name in circle:
            for target in sorted(arrows[name]):
                if target in circle:
                    print('  %s.c -> %s.c: %s' % (name, target, ' '.join(sorted(arrows[name][target]))))
    sys.exit(1)
print('layering: %d files, no circle of calls between them' % len(arrows))
