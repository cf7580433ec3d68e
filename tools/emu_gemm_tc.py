# Offline check (numpy, no GPU) of the index math in kernels/gemm_tc.cu: emulates each
# thread's loads, shared-memory layout, fragments and epilogue; compares with numpy matmul.
# Emulates gemm_tc.cu index math (loads, smem layout, mma fragments, epilogue) in numpy, no rounding.
import numpy as np
BM=BN=64; BK=32; T=128
def base(prec,kc,tid):
    if kc:
        return (tid>>5, tid&31) if prec=='tf32' else (tid>>4, 2*(tid&15))
    ib=(tid&7)|(((tid>>5)&3)<<3)
    return ib, ((tid>>3)&3) if prec=='tf32' else 2*((tid>>3)&3)
def elem(kc,flat,ld,row,k,rows,kend):
    if row<rows and k<kend: return flat[row*ld+k] if kc else flat[k*ld+row]
    return 0.0
def load_store(prec,kc,flat,ld,rows,row0,k0,kend,S):
    # S: [64][words][2] (tf32 uses [..][0])
    for tid in range(T):
        ib,kb=base(prec,kc,tid)
        if prec=='tf32' and kc: items=[(4*q,0) for q in range(16)]
        elif prec=='tf32': items=[(32*h,4*j) for j in range(8) for h in range(2)]
        elif kc: items=[(8*q,0) for q in range(8)]
        else: items=[(32*h,8*j) for j in range(4) for h in range(2)]
        for di,dk in items:
            r=ib+di; k=kb+dk
            if prec=='tf32':
                S[r][k][0]=elem(kc,flat,ld,row0+r,k0+k,rows,kend)
            else:
                S[r][k//2][0]=elem(kc,flat,ld,row0+r,k0+k,rows,kend)
                S[r][k//2][1]=elem(kc,flat,ld,row0+r,k0+k+1,rows,kend)
def mma(prec,acc,af,bf):
    # af[lane][4], bf[lane][2] words (tuple of floats); acc[lane][4]
    A=np.zeros((16,8 if prec=='tf32' else 16)); B=np.zeros((A.shape[1],8))
    for lane in range(32):
        g,t=lane>>2,lane&3
        if prec=='tf32':
            A[g][t]=af[lane][0][0];A[g+8][t]=af[lane][1][0];A[g][t+4]=af[lane][2][0];A[g+8][t+4]=af[lane][3][0]
            B[t][g]=bf[lane][0][0];B[t+4][g]=bf[lane][1][0]
        else:
            for h in range(2):
                A[g][2*t+h]=af[lane][0][h];A[g+8][2*t+h]=af[lane][1][h];A[g][2*t+8+h]=af[lane][2][h];A[g+8][2*t+8+h]=af[lane][3][h]
                B[2*t+h][g]=bf[lane][0][h];B[2*t+8+h][g]=bf[lane][1][h]
    C=A@B
    for lane in range(32):
        g,t=lane>>2,lane&3
        acc[lane][0]+=C[g][2*t];acc[lane][1]+=C[g][2*t+1];acc[lane][2]+=C[g+8][2*t];acc[lane][3]+=C[g+8][2*t+1]
def block(prec,akc,bkc,A,lda,arows,B,ldb,brows,m0,n0,kbeg,kend):
    W=36 if prec=='tf32' else 20
    acc=np.zeros((4,2,4,32,4))
    k0=kbeg
    while k0<kend:
        As=np.zeros((64,W,2));Bs=np.zeros((64,W,2))
        load_store(prec,akc,A,lda,arows,m0,k0,kend,As)
        load_store(prec,bkc,B,ldb,brows,n0,k0,kend,Bs)
        for w in range(4):
            wm,wn=w>>1,w&1
            for ks in range(4 if prec=='tf32' else 2):
                for mt in range(2):
                    for nt in range(4):
                        af=[];bf=[]
                        for lane in range(32):
                            g,t=lane>>2,lane&3;c=ks*8+t;r=wm*32+mt*16+g;n=wn*32+nt*8+g
                            af.append([As[r][c],As[r+8][c],As[r][c+4],As[r+8][c+4]]);bf.append([Bs[n][c],Bs[n][c+4]])
                        mma(prec,acc[w,mt,nt],af,bf)
        k0+=BK
    return acc
def epi(acc,C,rows,cols,m0,n0,f):
    for w in range(4):
        wm,wn=w>>1,w&1
        for mt in range(2):
            for nt in range(4):
                for lane in range(32):
                    g,t=lane>>2,lane&3
                    for j in range(4):
                        row=m0+wm*32+mt*16+g+(8 if j>=2 else 0);col=n0+wn*32+nt*8+2*t+(j&1)
                        if row<rows and col<cols: C[row,col]=f(acc[w,mt,nt,lane,j],row,col)
rng=np.random.default_rng(1)
for prec in ('tf32','bf16'):
  for (M,N,K) in [(70,45,37),(3,65,66),(65,1,33)]:
    X=rng.standard_normal((M,K));Wt=rng.standard_normal((K,N));dY=rng.standard_normal((M,N))
    Y=np.full((M,N),np.nan)
    for by in range(-(-M//64)):
        for bx in range(-(-N//64)):
            a=block(prec,True,False,X.ravel(),K,M,Wt.ravel(),N,N,by*64,bx*64,0,K);epi(a,Y,M,N,by*64,bx*64,lambda v,r,c:v)
    e1=np.abs(Y-X@Wt).max()
    dX=np.full((M,K),np.nan)
    for by in range(-(-M//64)):
        for bx in range(-(-K//64)):
            a=block(prec,True,True,dY.ravel(),N,M,Wt.ravel(),N,K,by*64,bx*64,0,N);epi(a,dX,M,K,by*64,bx*64,lambda v,r,c:v)
    e2=np.abs(dX-dY@Wt.T).max()
    rps=29; S=-(-M//rps); P=np.full((S,K,N),np.nan)
    for s in range(S):
        r0=min(M,s*rps);r1=min(M,r0+rps)
        for by in range(-(-K//64)):
            for bx in range(-(-N//64)):
                a=block(prec,False,False,X.ravel(),K,K,dY.ravel(),N,N,by*64,bx*64,r0,r1);epi(a,P[s],K,N,by*64,bx*64,lambda v,r,c:v)
    e3=np.abs(P.sum(0)-X.T@dY).max()
    print(prec,M,N,K,e1,e2,e3)
