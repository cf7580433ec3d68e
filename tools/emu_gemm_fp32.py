# Offline check (numpy, no GPU) of the index math in kernels/gemm_fp32.cu: emulates each
# thread's loads, shared-memory layout, fragments and epilogue; compares with numpy matmul.
import numpy as np
def base(kc,tid): return (tid>>4, tid&15) if kc else (tid&63, tid>>6)
def ls(kc,flat,ld,rows,row0,k0,kend,S):
    for tid in range(256):
        ib,kb=base(kc,tid)
        for q in range(4):
            di,dk=(16*q,0) if kc else (0,4*q)
            r=ib+di;k=kb+dk;gr=row0+r;gk=k0+k
            S[k][r]=(flat[gr*ld+gk] if kc else flat[gk*ld+gr]) if (gr<rows and gk<kend) else 0.0
def run(akc,bkc,A,lda,ar,B,ldb,br,Mo,No,kbeg,kend,C):
    for m0 in range(0,Mo,64):
        for n0 in range(0,No,64):
            acc=np.zeros((256,4,4));k0=kbeg
            while k0<kend:
                As=np.zeros((16,68));Bs=np.zeros((16,68))
                ls(akc,A,lda,ar,m0,k0,kend,As);ls(bkc,B,ldb,br,n0,k0,kend,Bs)
                for tid in range(256):
                    ty,tx=tid>>4,tid&15
                    acc[tid]+=As[:,ty*4:ty*4+4].T@Bs[:,tx*4:tx*4+4]
                k0+=16
            for tid in range(256):
                ty,tx=tid>>4,tid&15
                for a in range(4):
                    for b in range(4):
                        r=m0+ty*4+a;c=n0+tx*4+b
                        if r<Mo and c<No: C[r,c]=acc[tid,a,b]
rng=np.random.default_rng(2)
for M,N,K in [(70,45,37),(3,65,17),(65,1,33)]:
    X=rng.standard_normal((M,K));W=rng.standard_normal((K,N));dY=rng.standard_normal((M,N))
    Y=np.full((M,N),np.nan);run(True,False,X.ravel(),K,M,W.ravel(),N,N,M,N,0,K,Y)
    dX=np.full((M,K),np.nan);run(True,True,dY.ravel(),N,M,W.ravel(),N,K,M,K,0,N,dX)
    rps=20;S=-(-M//rps);P=np.full((S,K,N),np.nan)
    for s in range(S):
        r0=min(M,s*rps);r1=min(M,r0+rps);run(False,False,X.ravel(),K,K,dY.ravel(),N,N,K,N,r0,r1,P[s])
    print(M,N,K,np.abs(Y-X@W).max(),np.abs(dX-dY@W.T).max(),np.abs(P.sum(0)-X.T@dY).max())
