/* Snapshot files and the CURRENT pointer; SHA-256 from libsodium. */
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAPSHOT_FORMAT "snapshot-%06lld.db"

char *tb_snapshot_default_dir(const char *db_path) {
    size_t n = strlen(db_path);
    if (n > 3 && strcmp(db_path + n - 3, ".db") == 0)
        n -= 3;
    char *out = malloc(n + sizeof ".snapshots");
    if (out) {
        memcpy(out, db_path, n);
        memcpy(out + n, ".snapshots", sizeof ".snapshots");
    }
    return out;
}

int tb_snapshot_is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int fsync_path(const char *path, int flags) {
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static tb_status hash_file(const char *path, char hex[65], long long *ret_bytes) {
    if (sodium_init() < 0)
        return tb_error(TB_INTERNAL, "libsodium failed to initialize");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tb_error(errno == ENOENT ? TB_NOT_FOUND : TB_IO, "%s: %s", path, strerror(errno));
    crypto_hash_sha256_state h;
    crypto_hash_sha256_init(&h);
    unsigned char buf[1 << 16];
    long long total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        crypto_hash_sha256_update(&h, buf, (unsigned long long)n);
        total += n;
    }
    int err = n < 0 ? errno : 0;
    close(fd);
    if (n < 0)
        return tb_error(TB_IO, "%s: %s", path, strerror(err));
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&h, digest);
    sodium_bin2hex(hex, 65, digest, sizeof digest);
    if (ret_bytes)
        *ret_bytes = total;
    return TB_OK;
}

/* The highest snapshot number among dir's files (0 when none): numbers are never reused, even
 * when the trainer died before recording one it had written. */
static long long highest_file_seq(const char *dir) {
    DIR *d = opendir(dir);
    long long best = 0, seq;
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));) {
        char tail[8];
        if (sscanf(e->d_name, "snapshot-%lld.d%1[b]", &seq, tail) == 2 && seq > best)
            best = seq;
    }
    closedir(d);
    return best;
}

/* Writes text to dir/name through a temporary file, fsync'd, renamed into place. */
static tb_status replace_file(const char *dir, const char *name, const char *text) {
    char tmp[4096], final[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp-%ld", dir, name, (long)getpid());
    snprintf(final, sizeof final, "%s/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
    if (fd < 0)
        return tb_error(TB_IO, "%s: %s", tmp, strerror(errno));
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, final) != 0) {
        tb_status st = tb_error(TB_IO, "%s: %s", final, strerror(errno));
        unlink(tmp);
        return st;
    }
    fsync_path(dir, O_RDONLY | O_DIRECTORY);
    return TB_OK;
}

tb_status tb_snapshot_publish(tb_store *s, const char *dir, tb_snapshot_ref *ret) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return tb_error(TB_IO, "%s: cannot create the snapshot directory: %s", dir, strerror(errno));
    int64_t ids[TB_N_TASKS], seq;
    int pinned[TB_N_TASKS];
    char fingerprint[256];
    tb_status st = tb_store_served(s, ids, pinned);
    if (st == TB_OK)
        st = tb_store_format_fingerprint(ids, fingerprint, sizeof fingerprint);
    if (st == TB_OK)
        st = tb_store_next_snapshot_seq(s, &seq);
    if (st != TB_OK)
        return st;
    long long on_disk = highest_file_seq(dir);
    if (on_disk >= seq)
        seq = on_disk + 1;
    tb_snapshot_ref ref;
    snprintf(ref.file, sizeof ref.file, SNAPSHOT_FORMAT, (long long)seq);
    char tmp[4096], final[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp-%ld", dir, ref.file, (long)getpid());
    snprintf(final, sizeof final, "%s/%s", dir, ref.file);
    unlink(tmp);
    long long bytes = 0;
    if ((st = tb_store_write_served(s, ids, tmp)) == TB_OK && fsync_path(tmp, O_RDONLY) != 0)
        st = tb_error(TB_IO, "%s: fsync: %s", tmp, strerror(errno));
    if (st == TB_OK)
        st = hash_file(tmp, ref.sha256, &bytes);
    if (st == TB_OK && (chmod(tmp, 0444) != 0 || rename(tmp, final) != 0))
        st = tb_error(TB_IO, "%s: %s", final, strerror(errno));
    if (st != TB_OK) {
        unlink(tmp);
        return st;
    }
    fsync_path(dir, O_RDONLY | O_DIRECTORY);
    char pointer[160];
    snprintf(pointer, sizeof pointer, "%s %s\n", ref.file, ref.sha256);
    if ((st = replace_file(dir, TB_SNAPSHOT_POINTER, pointer)) != TB_OK)
        return st;
    if ((st = tb_store_record_snapshot(s, ref.file, ref.sha256, fingerprint, bytes, NULL)) != TB_OK)
        return st;
    if (ret)
        *ret = ref;
    return TB_OK;
}

tb_status tb_snapshot_current(const char *dir, tb_snapshot_ref *ret) {
    char path[4096], line[256];
    snprintf(path, sizeof path, "%s/%s", dir, TB_SNAPSHOT_POINTER);
    FILE *f = fopen(path, "r");
    if (!f)
        return tb_error(errno == ENOENT ? TB_NOT_FOUND : TB_IO, "%s: %s (no snapshot published there yet?)", path,
                        strerror(errno));
    int ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    tb_snapshot_ref ref;
    long long seq;
    char tail[8];
    if (!ok || sscanf(line, "%63s %64s", ref.file, ref.sha256) != 2 || strlen(ref.sha256) != 64 ||
        sscanf(ref.file, "snapshot-%lld.d%1[b]", &seq, tail) != 2 || strchr(ref.file, '/'))
        return tb_error(TB_CORRUPT, "%s: not a snapshot pointer (expected 'snapshot-N.db SHA256')", path);
    *ret = ref;
    return TB_OK;
}

tb_status tb_snapshot_verify(const char *dir, const tb_snapshot_ref *ref) {
    char path[4096], hex[65];
    snprintf(path, sizeof path, "%s/%s", dir, ref->file);
    tb_status st = hash_file(path, hex, NULL);
    if (st != TB_OK)
        return st;
    if (strcmp(hex, ref->sha256) != 0)
        return tb_error(TB_CORRUPT, "%s: SHA-256 %s, but %s/%s says %s (an incomplete copy?)", path, hex, dir,
                        TB_SNAPSHOT_POINTER, ref->sha256);
    return TB_OK;
}

static int by_seq_desc(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x < y) - (x > y);
}

tb_status tb_snapshot_prune(const char *dir, int keep, size_t *ret_removed) {
    tb_snapshot_ref cur;
    long long current = -1, seq;
    if (tb_snapshot_current(dir, &cur) == TB_OK)
        sscanf(cur.file, "snapshot-%lld", &current);
    DIR *d = opendir(dir);
    if (!d)
        return tb_error(TB_IO, "%s: %s", dir, strerror(errno));
    long long seqs[4096];
    size_t n = 0, removed = 0;
    char path[4096], tail[8];
    for (struct dirent *e; (e = readdir(d));) {
        if (sscanf(e->d_name, "snapshot-%lld.d%1[b]", &seq, tail) == 2 && n < sizeof seqs / sizeof seqs[0])
            seqs[n++] = seq;
        else if (e->d_name[0] == '.' && strstr(e->d_name, ".tmp-")) { /* left by a trainer that died */
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            removed += unlink(path) == 0;
        }
    }
    closedir(d);
    qsort(seqs, n, sizeof *seqs, by_seq_desc);
    int kept_older = 0;
    for (size_t i = 0; i < n; i++) {
        if (seqs[i] == current || (seqs[i] < current && ++kept_older < keep) || seqs[i] > current)
            continue; /* the one served, the newest older ones, and any newer one being written */
        snprintf(path, sizeof path, "%s/" SNAPSHOT_FORMAT, dir, seqs[i]);
        removed += unlink(path) == 0;
    }
    *ret_removed = removed;
    return TB_OK;
}
