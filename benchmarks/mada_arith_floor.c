/* mada_arith_floor.c -- the cost of the IEEE divisions and square roots alone: Adam's update
 * (1 sqrt + 2 divisions per element) and MADA's fused hyper_delay step (2 sqrt + 5 divisions),
 * in cache (n = 1e5), one thread, vectorised, no FMA (as the C core). Not part of the package;
 * it bounds from below what docs/benchmarks.md ("MADA's step against Adam's") compares.
 *
 *   gcc -O3 -fno-math-errno -ffp-contract=off -march=native -fopenmp-simd \
 *       benchmarks/mada_arith_floor.c -o /tmp/floor -lm && /tmp/floor
 */
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
__attribute__((noinline)) void k_adam(int n, float *restrict a, const float *restrict b, const float *restrict c){
  /* Adam: 1 sqrt + 2 divisions */
  #pragma omp simd
  for(int i=0;i<n;i++){ a[i] = a[i] - 0.001f*(b[i]/(sqrtf(c[i])/0.9f+1e-8f)); }
}
__attribute__((noinline)) void k_mada(int n, float *restrict a, const float *restrict b, const float *restrict c){
  /* MADA hyper_delay: 2 sqrt + 5 divisions */
  #pragma omp simd
  for(int i=0;i<n;i++){ float x=b[i], y=c[i];
    float s1=sqrtf(y)/0.9f+1e-8f; float v=(y+3.f*x)/7.f; float s2=sqrtf(v)*1.1f; float inv=1.f/(s1*s2+1.f);
    a[i] = a[i] - 0.001f*(x/s1) - 0.002f*(v/s1) + inv; }
}
int main(){ int n=100000; float *a=malloc(4*n),*b=malloc(4*n),*c=malloc(4*n);
 for(int i=0;i<n;i++){a[i]=1;b[i]=0.5f+i*1e-6f;c[i]=1+i*1e-5f;}
 for(int r=0;r<3;r++){ double t0=now(); for(int k=0;k<200;k++) k_adam(n,a,b,c); double t1=now(); for(int k=0;k<200;k++) k_mada(n,a,b,c); double t2=now();
 printf("adam-ops %.3f ns/elem  mada-ops %.3f ns/elem\n",(t1-t0)/200/n*1e9,(t2-t1)/200/n*1e9);}
 printf("%f\n",a[5]); }
