#!/usr/bin/env python3
"""Fails if two files of src/ import from each other, directly or in a ring.

An import is any `crate::…`, `super::…` or `self::…` path outside tests, resolved to
the file that defines the longest matching module. A mod.rs declaring or re-exporting
its own children is the module tree, not an import, and is not counted.
"""
import os,re,sys
root='src'
files={}
for d,_,fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'): files[os.path.join(d,f)]=open(os.path.join(d,f)).read()
def modpath(p):
    rel=p[len(root)+1:-3].split('/')
    if rel[-1] in ('mod','lib','main'): rel=rel[:-1]
    return rel
bymod={tuple(modpath(p)):p for p in files}
# Names a mod.rs re-exports from a child (`pub use self::child::{A, B}`): an import of
# `parent::A` is an import of the child's file.
reexports={}
for p,src in files.items():
    if p.endswith('mod.rs') or p.endswith('lib.rs'):
        for m in re.finditer(r'pub use self::(\w+)::(\{[^}]*\}|\w+);', src):
            child=bymod.get(tuple(modpath(p)+[m.group(1)]))
            for name in re.findall(r'\w+', m.group(2)):
                if child: reexports[(p,name)]=child
def resolve(parts):
    for n in range(len(parts),-1,-1):
        if tuple(parts[:n]) in bymod:
            target=bymod[tuple(parts[:n])]
            if n < len(parts) and (target, parts[n]) in reexports:
                return reexports[(target, parts[n])]
            return target
edges={p:set() for p in files}
for p,src in files.items():
    code=re.sub(r'//.*','',src)
    code=code.split('#[cfg(test)]')[0]
    me=modpath(p)
    is_mod = p.endswith('mod.rs') or p.endswith('lib.rs')
    for m in re.finditer(r'\b(crate|super|self)((?:::\w+)+)',code):
        head=m.group(1); parts=m.group(2).strip(':').split('::')
        if head=='crate': base=[]
        elif head=='super': base=me[:-1] if not is_mod else me[:-1]
        else: base=me if is_mod else me
        if head=='super' and not is_mod: base=me[:-1]
        if head=='super' and is_mod: base=me[:-1]
        t=resolve(base+parts)
        if t and t!=p: edges[p].add(t)
    # use super::{a, b}
    for m in re.finditer(r'use (super|crate)::\{([^}]*)\}',code):
        base=[] if m.group(1)=='crate' else me[:-1]
        for item in m.group(2).split(','):
            item=item.strip().split('::')[0].split(' ')[0]
            if item and item!='self':
                t=resolve(base+[item])
                if t and t!=p: edges[p].add(t)
# The module tree is not an import: lib.rs and a mod.rs declare (and may re-export)
# their own children. Every other edge counts.
def is_child(parent, child):
    return (parent.endswith('/mod.rs') or parent.endswith('lib.rs')) and modpath(child)[:-1] == modpath(parent)
for p in edges: edges[p]={t for t in edges[p] if not t.endswith('lib.rs') and not is_child(p, t)}
# find cycles of length 2+ via SCC
idx={};low={};st=[];on=set();res=[];c=[0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w);low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],idx[w])
    if low[v]==idx[v]:
        comp=[]
        while True:
            w=st.pop();on.discard(w);comp.append(w)
            if w==v:break
        if len(comp)>1: res.append(comp)
for v in edges:
    if v not in idx: sc(v)
for comp in res:
    print("import cycle:",comp)
    for a in comp:
        print("  ",a,"->",sorted(t for t in edges[a] if t in comp))
if '-v' in sys.argv:
    for p in sorted(edges): print(p,'->',sorted(edges[p]))

sys.exit(1 if res else 0)
