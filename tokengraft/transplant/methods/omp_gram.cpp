// Batch-OMP with a float16 Gram matrix, one target per thread at a time (see omp_gram.py).
//
// Per target and step t: alpha = alpha0 - G[S, :]^T gamma over all N atoms (the t rows of G stay
// in cache while one target runs all its steps), then every atom whose |alpha| lies within a
// proven error bound of the best is re-scored in float32 as |<d_j, y - D_S gamma>|; the best of
// those is the exact float32 pick. Coefficients: the inverse Cholesky factor grows by one row
// per step, as InverseCholesky in omp_batch.py does.
#include <atomic>
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>
#if defined(__AVX512F__) || defined(__F16C__)
#include <immintrin.h>
#endif

namespace {

struct Problem {
  const float* atoms; int64_t n; int64_t e;
  const uint16_t* gram; float gscale;
  const float* norms; float max_norm;
  const float* targets; const float* alpha0; int64_t batch;
  int k; float ridge, dependent, stop2; double gerr, grest, a0err; int band_max;
  int64_t* out_idx; float* out_coef; float* out_res; int64_t* stats;
};

inline float half_to_float(uint16_t h) {
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0) {
    if (man == 0) { bits = sign; } else {
      float f = std::ldexp(static_cast<float>(man), -24);
      return sign ? -f : f;
    }
  } else if (exp == 31) { bits = sign | 0x7f800000u | (man << 13); }
  else { bits = sign | ((exp + 112) << 23) | (man << 13); }
  float f; std::memcpy(&f, &bits, 4); return f;
#endif
}

// score[j] = |alpha0[j] - sum_i gg[i] * half(rows[i][j])| for all j; returns the largest.
float correlations(const Problem& p, const float* a0, const uint16_t* const* rows, const float* gg, int t,
                  float* score) {
  int64_t j = 0;
  float m = -FLT_MAX;
#if defined(__AVX512F__)
  __m512 top = _mm512_set1_ps(-FLT_MAX);
  constexpr int W = 8;  // 8 x 16 floats per block in registers
  for (; j + 16 * W <= p.n; j += 16 * W) {
    __m512 acc[W];
    for (int w = 0; w < W; ++w) acc[w] = _mm512_loadu_ps(a0 + j + 16 * w);
    for (int i = 0; i < t; ++i) {
      const __m512 c = _mm512_set1_ps(gg[i]);
      const uint16_t* row = rows[i] + j;
      for (int w = 0; w < W; ++w) {
        __m512 g = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 16 * w)));
        acc[w] = _mm512_fnmadd_ps(c, g, acc[w]);
      }
    }
    for (int w = 0; w < W; ++w) {
      const __m512 v = _mm512_abs_ps(acc[w]);
      top = _mm512_max_ps(top, v);
      _mm512_storeu_ps(score + j + 16 * w, v);
    }
  }
  m = _mm512_reduce_max_ps(top);
#elif defined(__F16C__) && defined(__AVX2__)
  constexpr int W = 8;  // 8 x 8 floats
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 top = _mm256_set1_ps(-FLT_MAX);
  for (; j + 8 * W <= p.n; j += 8 * W) {
    __m256 acc[W];
    for (int w = 0; w < W; ++w) acc[w] = _mm256_loadu_ps(a0 + j + 8 * w);
    for (int i = 0; i < t; ++i) {
      const __m256 c = _mm256_set1_ps(gg[i]);
      const uint16_t* row = rows[i] + j;
      for (int w = 0; w < W; ++w) {
        __m256 g = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 8 * w)));
        acc[w] = _mm256_fnmadd_ps(c, g, acc[w]);
      }
    }
    for (int w = 0; w < W; ++w) {
      const __m256 v = _mm256_andnot_ps(sign, acc[w]);
      top = _mm256_max_ps(top, v);
      _mm256_storeu_ps(score + j + 8 * w, v);
    }
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, top);
  for (float v : lanes) m = std::max(m, v);
#endif
  for (; j < p.n; ++j) {
    float acc = a0[j];
    for (int i = 0; i < t; ++i) acc -= gg[i] * half_to_float(rows[i][j]);
    score[j] = std::fabs(acc);
    m = std::max(m, score[j]);
  }
  return m;
}

// err[j] = sum_i |gg[i]| |half(rows[i][j])|: the scale of each atom's float16 rounding error.
void magnitudes(const Problem& p, const uint16_t* const* rows, const float* gg, int t, float* err) {
  int64_t j = 0;
#if defined(__AVX512F__)
  constexpr int W = 8;
  const __m512 mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (; j + 16 * W <= p.n; j += 16 * W) {
    __m512 acc[W];
    for (int w = 0; w < W; ++w) acc[w] = _mm512_setzero_ps();
    for (int i = 0; i < t; ++i) {
      const __m512 c = _mm512_set1_ps(std::fabs(gg[i]));
      const uint16_t* row = rows[i] + j;
      for (int w = 0; w < W; ++w) {
        __m512 g = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 16 * w)));
        acc[w] = _mm512_fmadd_ps(c, _mm512_and_ps(g, mask), acc[w]);
      }
    }
    for (int w = 0; w < W; ++w) _mm512_storeu_ps(err + j + 16 * w, acc[w]);
  }
#endif
  for (; j < p.n; ++j) {
    float acc = 0.0f;
    for (int i = 0; i < t; ++i) acc += std::fabs(gg[i] * half_to_float(rows[i][j]));
    err[j] = acc;
  }
}

// 16 partial sums (vectorised; any summation order keeps the float32 error bound used below)
inline float dot(const float* a, const float* b, int64_t e) {
  float part[16] = {};
  int64_t l = 0;
  for (; l + 16 <= e; l += 16)
    for (int q = 0; q < 16; ++q) part[q] += a[l + q] * b[l + q];
  float s = 0.0f;
  for (; l < e; ++l) s += a[l] * b[l];
  for (int q = 0; q < 16; ++q) s += part[q];
  return s;
}

// The largest of n floats.
float max_score(const float* x, int64_t n) {
  int64_t j = 0;
  float m = -FLT_MAX;
#if defined(__AVX512F__)
  __m512 v = _mm512_set1_ps(-FLT_MAX);
  for (; j + 16 <= n; j += 16) v = _mm512_max_ps(v, _mm512_loadu_ps(x + j));
  m = _mm512_reduce_max_ps(v);
#endif
  for (; j < n; ++j) m = std::max(m, x[j]);
  return m;
}

// The first j >= from with x[j] >= threshold (n if none).
int64_t above(const float* x, int64_t n, float threshold, int64_t from) {
  int64_t j = from;
#if defined(__AVX512F__)
  const __m512 th = _mm512_set1_ps(threshold);
  for (; j < n && (j & 15); ++j) if (x[j] >= threshold) return j;
  for (; j + 16 <= n; j += 16) {
    const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + j), th, _CMP_GE_OQ);
    if (hit) return j + __builtin_ctz(hit);
  }
#endif
  for (; j < n; ++j) if (x[j] >= threshold) return j;
  return n;
}

struct Work;
void residual(const Problem& p, Work& s, const float* y, int t);

struct Bound {
  double a, b;      // |alpha_j - score_j| <= n_j a + b for every atom j
  double u16, rest; // ... <= 1.05 (u16 sum_i |gg_i h_ij| + n_j rest) + b, atom by atom
  int live;         // rows of G in use
};

struct Work {
  std::vector<float> score, err, inv, z, coef, gg, r, w, g;
  std::vector<const uint16_t*> rows;
  std::vector<int64_t> idx, cand;
  int64_t candidates = 0, crowded = 0, refined = 0;
  explicit Work(const Problem& p)
      : score(p.n), err(p.n), inv(p.k * p.k), z(p.k), coef(p.k), gg(p.k), r(p.e), w(p.k), g(p.k), rows(p.k), idx(p.k) {}
};

// s.r = y - D_S gamma in float32 over the first t chosen atoms
void residual(const Problem& p, Work& s, const float* y, int t) {
  std::memcpy(s.r.data(), y, sizeof(float) * p.e);
  for (int i = 0; i < t; ++i) {
    const float c = s.coef[i];
    if (c == 0.0f) continue;
    const float* d = p.atoms + s.idx[i] * p.e;
    for (int64_t l = 0; l < p.e; ++l) s.r[l] -= c * d[l];
  }
}

// The float32 pick among the atoms not chosen: the best of the band's candidates (the lowest
// index wins a tie, as argmax does), or -1 when the band holds more than band_max atoms.
int64_t pick(const Problem& p, Work& s, int t, const Bound& bound, float top) {
  float* score = s.score.data();
  bool stale = false;  // the largest score was a chosen atom's
  for (int i = 0; i < t; ++i) {
    stale |= score[s.idx[i]] == top;
    score[s.idx[i]] = -FLT_MAX;  // never pick an atom twice
  }
  const double a = bound.a, b = bound.b;
  const double floor = (stale ? max_score(score, p.n) : top) - p.max_norm * a - b;
  // coarse test with the largest norm (a float threshold rounded down), then each atom's own
  const float coarse = std::nextafter(static_cast<float>(floor - p.max_norm * a - b), -FLT_MAX);
  s.cand.clear();
  for (int64_t j = above(score, p.n, coarse, 0); j < p.n; j = above(score, p.n, coarse, j + 1)) {
    if (score[j] + p.norms[j] * a + b >= floor) {
      s.cand.push_back(j);
      if (static_cast<int>(s.cand.size()) > p.band_max) break;
    }
  }
  if (static_cast<int>(s.cand.size()) > p.band_max) {
    // too wide: bound each atom's float16 error by its own |G| entries instead of n_i n_j
    ++s.refined;
    float* err = s.err.data();
    magnitudes(p, s.rows.data(), s.gg.data(), bound.live, err);
    double best = -DBL_MAX;
    for (int64_t j = 0; j < p.n; ++j) {
      err[j] = static_cast<float>(1.05 * (bound.u16 * err[j] + p.norms[j] * bound.rest) + b) * (1.0f + 1e-6f);
      best = std::max(best, static_cast<double>(score[j]) - err[j]);
    }
    s.cand.clear();
    for (int64_t j = 0; j < p.n; ++j) {
      if (static_cast<double>(score[j]) + err[j] >= best) {
        s.cand.push_back(j);
        if (static_cast<int>(s.cand.size()) > p.band_max) return -1;
      }
    }
  }
  s.candidates += s.cand.size();
  for (int64_t j : s.cand)  // candidate rows are scattered in memory: ask for them early
    for (int64_t l = 0; l < p.e; l += 16) __builtin_prefetch(p.atoms + j * p.e + l);
  int64_t best = -1; float best_score = -1.0f;
  for (int64_t j : s.cand) {
    const float v = std::fabs(dot(p.atoms + j * p.e, s.r.data(), p.e));
    if (v > best_score) { best_score = v; best = j; }
  }
  return best;
}

void run_target(const Problem& p, Work& s, int64_t b) {
  const float* y = p.targets + b * p.e;
  const float* a0 = p.alpha0 + b * p.n;
  const int k = p.k, e = static_cast<int>(p.e);
  const float norm2 = dot(y, y, e);
  const double ynorm = std::sqrt(static_cast<double>(norm2));
  const float stop2 = std::max(p.stop2, 2.0f * p.ridge);
  float left = norm2;
  std::fill(s.inv.begin(), s.inv.end(), 0.0f);
  std::fill(s.coef.begin(), s.coef.end(), 0.0f);
  const double u = std::ldexp(1.0, -24);
  for (int t = 0; t < k; ++t) {
    // alpha = alpha0 - G[S, :]^T gamma from the float16 rows; sums of |gamma| for its error bound
    int live = 0; double s1 = 0.0, s0 = 0.0;
    for (int i = 0; i < t; ++i) {
      if (s.coef[i] == 0.0f) continue;
      s.rows[live] = p.gram + s.idx[i] * p.n;
      s.gg[live++] = s.coef[i] * p.gscale;
      s1 += p.norms[s.idx[i]] * std::fabs(static_cast<double>(s.coef[i]));
      s0 += std::fabs(static_cast<double>(s.coef[i]));
    }
    const float top = correlations(p, a0, s.rows.data(), s.gg.data(), live, s.score.data());
    residual(p, s, y, t);  // r = y - D_S gamma in float32, what the candidates are re-scored with
    const double rnorm = std::sqrt(static_cast<double>(dot(s.r.data(), s.r.data(), e)));
    // |alpha_j - fl32 score_j| <= n_j * a + b: float16 G (gerr n_i n_j per entry, subnormals
    // gscale 2^-25), alpha0 (a0err |y| n_j), float32 sums of t + 1 terms and the float32 residual,
    // each (t + 1) u (|y| + s1), and the float32 dot of e terms, 1.01 e u |r|.
    const double rest = p.grest * s1 + p.a0err * ynorm + 3.0 * (t + 2) * u * (ynorm + s1)
                        + 1.02 * e * u * rnorm + 1e-30;
    const Bound bound{1.05 * (p.gerr * s1 + rest), 1.05 * p.gscale * std::ldexp(1.0, -25) * s0, p.gerr - p.grest,
                      rest, live};
    const int64_t j = pick(p, s, t, bound, top);
    if (j < 0) {  // left to the caller's screened selection
      ++s.crowded;
      p.out_idx[b * k] = -1;
      return;
    }
    s.idx[t] = j;
    // extend the inverse Cholesky factor (InverseCholesky.extend)
    const float* atom = p.atoms + j * p.e;
    for (int i = 0; i < t; ++i) s.g[i] = dot(p.atoms + s.idx[i] * p.e, atom, e);
    float* inv = s.inv.data();
    float ww = 0.0f;
    for (int i = 0; i < t; ++i) {
      float v = 0.0f;
      for (int l = 0; l <= i; ++l) v += inv[i * k + l] * s.g[l];
      s.w[i] = v; ww += v * v;
    }
    const float an2 = dot(atom, atom, e);
    const float d2 = an2 * (1.0f + p.ridge) - ww;
    const bool keep = d2 > p.dependent * an2 && !(left <= stop2 * norm2);
    const float inv_d = keep ? 1.0f / std::sqrt(std::max(d2, 1.17549435e-38f)) : 0.0f;
    for (int l = 0; l < t; ++l) {
      float v = 0.0f;
      for (int i = l; i < t; ++i) v += s.w[i] * inv[i * k + l];
      inv[t * k + l] = -v * inv_d;
    }
    inv[t * k + t] = inv_d;
    float wz = 0.0f;
    for (int i = 0; i < t; ++i) wz += s.w[i] * s.z[i];
    const float zt = (dot(y, atom, e) - wz) * inv_d;
    s.z[t] = zt; left -= zt * zt;
    for (int l = 0; l <= t; ++l) {
      float v = 0.0f;
      for (int i = l; i <= t; ++i) v += inv[i * k + l] * s.z[i];
      s.coef[l] = v;
    }
  }
  for (int t = 0; t < k; ++t) { p.out_idx[b * k + t] = s.idx[t]; p.out_coef[b * k + t] = s.coef[t]; }
  residual(p, s, y, k);
  p.out_res[b] = norm2 > 0.0f ? std::sqrt(dot(s.r.data(), s.r.data(), e) / norm2) : 0.0f;
}

}  // namespace

// G[i][j] = G[j][i] for j < i < n, columns [first, last): mirrors the rows' upper triangle below it,
// in 64 x 64 tiles (a plain transposed copy reads one cache line per value).
extern "C" void tg_mirror(uint16_t* gram, int64_t n, int64_t first, int64_t last, int threads) {
  constexpr int64_t B = 64;
  std::atomic<int64_t> next{first};
  auto worker = [&]() {
    for (int64_t c0 = next.fetch_add(B); c0 < last; c0 = next.fetch_add(B)) {
      const int64_t c1 = std::min(c0 + B, last);
      for (int64_t r0 = c0; r0 < n; r0 += B) {
        const int64_t r1 = std::min(r0 + B, n);
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < std::min(c1, r); ++c) gram[r * n + c] = gram[c * n + r];
      }
    }
  };
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
}

extern "C" int tg_omp_gram(const float* atoms, int64_t n, int64_t e, const uint16_t* gram, float gscale,
                           const float* norms, float max_norm, const float* targets, const float* alpha0,
                           int64_t batch, int k, float ridge, float dependent, float stop2, double gerr,
                           double grest, double a0err, int band_max, int threads, int64_t* out_idx, float* out_coef,
                           float* out_res, int64_t* stats) {
  const Problem p{atoms, n, e, gram, gscale, norms, max_norm, targets, alpha0, batch, k, ridge, dependent, stop2,
                  gerr, grest, a0err, band_max, out_idx, out_coef, out_res, stats};
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> candidates{0}, crowded{0}, refined{0};
  auto worker = [&]() {
    Work s(p);
    for (int64_t b = next++; b < p.batch; b = next++) run_target(p, s, b);
    candidates += s.candidates; crowded += s.crowded; refined += s.refined;
  };
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
  stats[0] = candidates; stats[1] = crowded; stats[2] = refined;
  return 0;
}
