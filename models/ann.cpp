// hnswlib behind tb_ann (see ann.h). C++ only where hnswlib needs it; errors become tb_status.
#include "ann.h"

#include <cblas.h>
#include <hnswlib/hnswlib.h>
#include <sodium.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

const char MAGIC[4] = {'T', 'M', 'B', 'A'};
const uint16_t VERSION = 1;
const size_t MAX_M = 256, MAX_EF = 100000;

typedef hnswlib::HierarchicalNSW<float> graph;

// Inner-product distance by OpenBLAS's sdot, which picks AVX2 or AVX-512 kernels at run time,
// where hnswlib compiled for baseline x86-64 has only SSE: 1.44x the searches a second on 50,000
// genre-embedding rows of 128 values (ef 128), and the graph's file is the same.
float blas_distance(const void *a, const void *b, const void *param) {
    return 1.0f - cblas_sdot((int)*static_cast<const size_t *>(param), static_cast<const float *>(a), 1,
                             static_cast<const float *>(b), 1);
}

struct blas_ip_space : hnswlib::SpaceInterface<float> {
    size_t dim;
    explicit blas_ip_space(size_t d) : dim(d) {}
    size_t get_data_size() override { return dim * sizeof(float); }
    hnswlib::DISTFUNC<float> get_dist_func() override { return blas_distance; }
    void *get_dist_func_param() override { return &dim; }
};

// hnswlib reads and writes files only: a memory file stands in for one.
struct memfile {
    int fd = -1;
    ~memfile() {
        if (fd >= 0)
            close(fd);
    }
    std::string path() const { return "/proc/self/fd/" + std::to_string(fd); }
};

void put64(std::string &s, uint64_t v) { s.append(reinterpret_cast<const char *>(&v), 8); }

uint64_t get64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

} // namespace

struct tb_ann {
    blas_ip_space space;
    std::unique_ptr<graph> g;
    tb_ann_params params;
    size_t n, dim;
    explicit tb_ann(size_t d) : space(d), n(0), dim(d) {}
};

// Every link of every level names an existing row; the levels and counts are within the
// graph's own bounds. (hnswlib trusts its file; a search would follow a bad link out of bounds.)
static bool links_valid(const graph &g, size_t n) {
    if (g.cur_element_count != n || (n > 0 && g.enterpoint_node_ >= n) || g.maxlevel_ < 0 || g.maxlevel_ > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (g.getExternalLabel((hnswlib::tableint)i) != i || g.element_levels_[i] < 0 ||
            g.element_levels_[i] > g.maxlevel_)
            return false;
        for (int level = 0; level <= g.element_levels_[i]; level++) {
            hnswlib::linklistsizeint *list =
                level == 0 ? g.get_linklist0((hnswlib::tableint)i) : g.get_linklist((hnswlib::tableint)i, level);
            unsigned short count = g.getListCount(list);
            if (count > (level == 0 ? g.maxM0_ : g.maxM_))
                return false;
            const hnswlib::tableint *to = reinterpret_cast<const hnswlib::tableint *>(list + 1);
            for (unsigned short j = 0; j < count; j++)
                if (to[j] >= n)
                    return false;
        }
    }
    return true;
}

extern "C" {

tb_status tb_ann_build(const float *vectors, size_t n, size_t dim, const tb_ann_params *p, int threads,
                       tb_ann **ret) {
    if (n == 0 || dim == 0 || n > UINT32_MAX || p->m < 2 || p->m > MAX_M || p->ef_construction < 1 ||
        p->ef_construction > MAX_EF || p->ef_search < 1 || p->ef_search > MAX_EF)
        return tb_error(TB_INVALID, "an approximate index takes 1 to %u rows, M 2 to %zu, ef 1 to %zu", UINT32_MAX,
                        MAX_M, MAX_EF);
    tb_ann *a = new (std::nothrow) tb_ann(dim);
    if (!a)
        return tb_error(TB_NOMEM, "out of memory");
    try {
        a->g.reset(new graph(&a->space, n, p->m, p->ef_construction, p->seed));
        a->g->setEf(p->ef_search);
        // One thread: hnswlib 0.6.2's concurrent insert reads a node's upper-level links while
        // another thread is still allocating them (AddressSanitizer: a heap overflow in
        // searchBaseLayer under two threads), so rows go in one at a time.
        (void)threads;
        for (size_t i = 0; i < n; i++)
            a->g->addPoint(vectors + i * dim, i);
    } catch (const std::bad_alloc &) {
        delete a;
        return tb_error(TB_NOMEM, "out of memory building an approximate index of %zu rows", n);
    } catch (const std::exception &e) {
        delete a;
        return tb_error(TB_INTERNAL, "building an approximate index: %s", e.what());
    }
    a->params = *p;
    a->n = n;
    *ret = a;
    return TB_OK;
}

size_t tb_ann_search(const tb_ann *a, const float *q, size_t k, tb_hit *out) {
    if (k == 0)
        return 0;
    std::priority_queue<std::pair<float, hnswlib::labeltype>> found;
    try {
        found = a->g->searchKnn(q, k);
    } catch (const std::exception &) { // only out of memory: no hits
        return 0;
    }
    size_t m = found.size();
    for (size_t i = m; i-- > 0; found.pop()) // the queue holds the farthest first
        out[i] = tb_hit{1.0f - found.top().first, (uint32_t)found.top().second};
    return m;
}

size_t tb_ann_bytes(const tb_ann *a) {
    const graph &g = *a->g;
    size_t bytes = g.max_elements_ * g.size_data_per_element_ + g.max_elements_ * sizeof(void *);
    for (size_t i = 0; i < g.cur_element_count; i++)
        bytes += g.element_levels_[i] > 0 ? g.size_links_per_element_ * (size_t)g.element_levels_[i] : 0;
    return bytes;
}

const tb_ann_params *tb_ann_get_params(const tb_ann *a) { return &a->params; }

void tb_ann_set_ef(tb_ann *a, size_t ef_search) {
    ef_search = ef_search < 1 ? 1 : ef_search > MAX_EF ? MAX_EF : ef_search;
    a->g->setEf(ef_search);
    a->params.ef_search = ef_search;
}

tb_status tb_ann_save(const tb_ann *a, void **ret_blob, size_t *ret_len) {
    memfile f;
    if ((f.fd = memfd_create("timbre-ann", 0)) < 0)
        return tb_error(TB_IO, "cannot make a memory file for the approximate index");
    std::string graph_bytes;
    try {
        a->g->saveIndex(f.path());
        off_t size = lseek(f.fd, 0, SEEK_END);
        if (size <= 0)
            return tb_error(TB_IO, "saving the approximate index wrote nothing");
        graph_bytes.resize((size_t)size);
        if (pread(f.fd, &graph_bytes[0], (size_t)size, 0) != size)
            return tb_error(TB_IO, "reading the approximate index back");
    } catch (const std::exception &e) {
        return tb_error(TB_IO, "saving the approximate index: %s", e.what());
    }
    std::string out(MAGIC, 4);
    out.append(reinterpret_cast<const char *>(&VERSION), 2);
    put64(out, a->n);
    put64(out, a->dim);
    put64(out, a->params.m);
    put64(out, a->params.ef_construction);
    put64(out, a->params.ef_search);
    put64(out, a->params.seed);
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, reinterpret_cast<const unsigned char *>(graph_bytes.data()), graph_bytes.size());
    out.append(reinterpret_cast<const char *>(digest), sizeof digest);
    out += graph_bytes;
    void *blob = malloc(out.size());
    if (!blob)
        return tb_error(TB_NOMEM, "out of memory");
    memcpy(blob, out.data(), out.size());
    *ret_blob = blob;
    *ret_len = out.size();
    return TB_OK;
}

tb_status tb_ann_load(const void *blob, size_t len, size_t n, size_t dim, tb_ann **ret) {
    const unsigned char *p = static_cast<const unsigned char *>(blob);
    const size_t head = 4 + 2 + 6 * 8 + crypto_hash_sha256_BYTES;
    uint16_t version = 0;
    if (len < head || memcmp(p, MAGIC, 4) != 0)
        return tb_error(TB_CORRUPT, "approximate index blob: wrong magic or too short (%zu bytes)", len);
    memcpy(&version, p + 4, 2);
    if (version != VERSION)
        return tb_error(TB_VERSION, "approximate index blob version %u; this binary reads %u", version, VERSION);
    tb_ann_params params = {get64(p + 22), get64(p + 30), get64(p + 38), get64(p + 46)};
    if (get64(p + 6) != n || get64(p + 14) != dim || params.m < 2 || params.m > MAX_M || params.ef_search < 1 ||
        params.ef_search > MAX_EF)
        return tb_error(TB_CORRUPT, "approximate index blob: %llu × %llu rows, the index has %zu × %zu",
                        (unsigned long long)get64(p + 6), (unsigned long long)get64(p + 14), n, dim);
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, p + head, len - head);
    if (sodium_memcmp(digest, p + 54, sizeof digest) != 0)
        return tb_error(TB_CORRUPT, "approximate index blob: its SHA-256 does not match its bytes");
    memfile f;
    if ((f.fd = memfd_create("timbre-ann", 0)) < 0)
        return tb_error(TB_IO, "cannot make a memory file for the approximate index");
    for (size_t at = head; at < len;) {
        ssize_t w = write(f.fd, p + at, len - at);
        if (w <= 0)
            return tb_error(TB_IO, "writing the approximate index to a memory file");
        at += (size_t)w;
    }
    tb_ann *a = new (std::nothrow) tb_ann(dim);
    if (!a)
        return tb_error(TB_NOMEM, "out of memory");
    try {
        a->g.reset(new graph(&a->space, f.path(), false, n));
    } catch (const std::bad_alloc &) {
        delete a;
        return tb_error(TB_NOMEM, "out of memory loading an approximate index of %zu rows", n);
    } catch (const std::exception &e) {
        delete a;
        return tb_error(TB_CORRUPT, "approximate index blob: %s", e.what());
    }
    const graph &g = *a->g;
    if (g.data_size_ != dim * sizeof(float) || g.size_data_per_element_ != g.size_links_level0_ + g.data_size_ +
                                                                               sizeof(hnswlib::labeltype) ||
        g.offsetData_ != g.size_links_level0_ || g.label_offset_ != g.size_links_level0_ + g.data_size_ ||
        g.offsetLevel0_ != 0 || g.maxM_ != params.m || g.maxM0_ != 2 * params.m || !links_valid(g, n)) {
        delete a;
        return tb_error(TB_CORRUPT, "approximate index blob: the graph does not fit %zu rows of %zu values", n, dim);
    }
    a->g->setEf(params.ef_search);
    a->params = params;
    a->n = n;
    *ret = a;
    return TB_OK;
}

tb_ann *tb_ann_free(tb_ann *a) {
    delete a;
    return NULL;
}

} // extern "C"
