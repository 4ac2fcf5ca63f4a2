"""PLAN.md's exploration on the four validation folds: the stored score, the neighbour score
(the shipped slice context), smoothed scores, and the neighbour rule's threshold q.
Run: python3 explore.py (reads results/val-fold{1..4}-slices.csv, written by evaluate.sh val)."""
import csv, os
from collections import defaultdict
def load(path):
    rows=list(csv.reader(open(path)))[1:]
    pats=defaultdict(list)
    for r in rows:
        pats[r[0]].append(dict(slice=int(r[1]),truth=int(r[2])>0,tpx=int(r[2]),px=int(r[3]),mp=float(r[4]),rule=float(r[5])))
    for p in pats.values(): p.sort(key=lambda x:x['slice'])
    return pats
def auc(items):
    pos=[s for s,t in items if t]; neg=[s for s,t in items if not t]
    allv=sorted([(s,t) for s,t in items])
    # rank-based
    ranks={}; i=0; n=len(allv)
    r=[0]*n
    while i<n:
        j=i
        while j<n and allv[j][0]==allv[i][0]: j+=1
        for k in range(i,j): r[k]=(i+j+1)/2
        i=j
    rp=sum(r[k] for k in range(n) if allv[k][1])
    P=len(pos);N=len(neg)
    return (rp-P*(P+1)/2)/(P*N)
def acc(items,thr):
    return sum((s>=thr)==t for s,t in items)/len(items)
def scores(p, kind, arg=None):
    out=[]
    n=len(p)
    has=[s['px']>=8 for s in p]
    for i,s in enumerate(p):
        nb=[p[j] for j in (i-1,i+1) if 0<=j<n]
        if kind=='stored': sc=s['rule']
        elif kind=='neighbour':
            if has[i]: sc=1.0+s['mp']          # band 3: own mask
            elif any(has[j] for j in (i-1,i+1) if 0<=j<n): sc=0.5+0.5*s['mp']   # band 2
            else: sc=0.5*s['mp']               # band 1
            # note: threshold q in mp maps to 0.5+0.5q
        elif kind=='smooth':
            w=arg; m=max([x['mp'] for x in nb]+[0])
            v=max(s['mp'], w*m)
            sc=v if has[i] or v<0.5 else v  # rule at 0.5 on smoothed
        elif kind=='smoothrule':
            # keep stored decisions, rank no-mask slices by smoothed prob (held under 0.5)
            w=arg; m=max([x['mp'] for x in nb]+[0]); v=max(s['mp'], w*m)
            sc=s['mp'] if has[i] else min(v,0.4999)
        out.append((sc,s['truth']))
    return out
HERE=os.path.dirname(os.path.abspath(__file__))
folds={V:load(os.path.join(HERE,f'results/val-fold{V}-slices.csv')) for V in (1,2,3,4)}
def run(kind,arg=None,thr=0.5):
    aucs=[];allitems=[]
    for V,pats in folds.items():
        items=[x for p in pats.values() for x in scores(p,kind,arg)]
        aucs.append(auc(items)); allitems+=items
    return sum(aucs)/len(aucs), aucs, allitems
for kind,arg in [('stored',None),('neighbour',None),('smooth',0.25),('smooth',0.5),('smooth',0.75),('smoothrule',0.5),('smoothrule',1.0)]:
    m,aucs,items=run(kind,arg)
    # best threshold for accuracy on pooled val
    cands=sorted(set(s for s,_ in items))
    best=max(((acc(items,t),-t) for t in cands))
    print(f"{kind:10} {arg!s:5} meanAUC {m:.4f} folds {[round(a,4) for a in aucs]} acc@0.5 {acc(items,0.5):.4f} best acc {best[0]:.4f} at {-best[1]:.4f}")
print('--- slices without a counted outline, next to one, largest probability >= 0.5 (fold, patient, slice, prob, truth, truth px, cleaned px):')
tot=0
for V,pats in folds.items():
    for pid,p in pats.items():
        has=[s['px']>=8 for s in p]
        for i,s in enumerate(p):
            nb=any(has[j] for j in (i-1,i+1) if 0<=j<len(p))
            if not has[i] and nb and s['mp']>=0.5: print(V,pid,s['slice'],s['mp'],s['truth'],s['tpx'],s['px'])
m,a,items=run('stored'); print('stored acc', acc(items,0.5))
m,a,items=run('neighbour')
for q in (0.0,0.1,0.3,0.5,0.9,0.99):
    print('neighbour rule, q =', q, 'pooled accuracy', round(acc(items,0.5+0.5*q),4))
