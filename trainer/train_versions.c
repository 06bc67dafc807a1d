/* timbre-train models …: the versions in a trainer's database — list, pin (a rollback), unpin,
 * rm, prune — and the snapshot each change that alters what is served writes. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "snapshot.h"
#include "train_cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: timbre-train models [--db FILE] [--snapshots DIR] COMMAND\n"
               "\n"
               "  list               every version: id, task, name and version, when, its key metric,\n"
               "                     size, and whether it is published, pinned or served\n"
               "  pin TASK ID        serve model ID for TASK (genre, popularity, recommend,\n"
               "                     multilabel) instead of its published one: a rollback, kept\n"
               "                     until unpinned, whatever is published meanwhile\n"
               "  unpin TASK         serve TASK's published model again\n"
               "  rm ID              delete a version (not one published or pinned)\n"
               "  prune --keep N     per task, keep the N newest versions (and what is published or\n"
               "                     pinned), compact the database, keep N snapshot files\n"
               "  snapshot           write a snapshot of what is served now\n"
               "\n"
               "pin, unpin and snapshot write a new snapshot and move DIR/CURRENT to it; a server\n"
               "started with --db DIR --watch S follows within S seconds.\n");
}

tb_status tb_train_snapshot(tb_store *store, const char *db, const char *dir) {
    char *fallback = dir ? NULL : tb_snapshot_default_dir(db);
    const char *where = dir ? dir : fallback;
    if (!where)
        return tb_error(TB_NOMEM, "out of memory");
    tb_snapshot_ref ref;
    tb_status st = tb_snapshot_publish(store, where, &ref);
    if (st == TB_OK)
        tb_log(TB_LOG_INFO, "snapshot: %s/%s (sha256 %.16s…) is now %s/%s", where, ref.file, ref.sha256, where,
               TB_SNAPSHOT_POINTER);
    free(fallback);
    return st;
}

/* The metric a listing shows for a version: accuracy, R², or Genre-Hit@10. */
static void key_metric(const char *metrics_json, char *out, size_t size) {
    static const char *const keys[] = {"accuracy", "r2", "genre_hit_at_10", "micro_f1"};
    snprintf(out, size, "-");
    cJSON *m = cJSON_Parse(metrics_json ? metrics_json : "{}");
    for (size_t i = 0; m && i < sizeof keys / sizeof keys[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, keys[i]);
        if (cJSON_IsNumber(v)) {
            snprintf(out, size, "%s %.4f", keys[i], v->valuedouble);
            break;
        }
    }
    cJSON_Delete(m);
}

static int task_slot(const char *task) {
    for (int t = 0; t < TB_N_TASKS; t++)
        if (strcmp(tb_store_tasks[t], task) == 0)
            return t;
    return -1;
}

static tb_status list(tb_store *store) {
    tb_model_record *rows = NULL;
    size_t n = 0;
    int64_t served[TB_N_TASKS];
    int pinned[TB_N_TASKS];
    tb_status st = tb_store_served(store, served, pinned);
    if (st == TB_OK)
        st = tb_store_list_models(store, 0, &rows, &n);
    if (st != TB_OK)
        return st;
    printf("%6s  %-10s  %-22s %4s  %-20s  %-24s %10s  %s\n", "id", "task", "name", "v", "created", "metric", "bytes",
           "state");
    for (size_t i = 0; i < n; i++) {
        const tb_model_record *m = &rows[i];
        int t = task_slot(m->task);
        int is_served = t >= 0 && served[t] == m->id, is_pinned = is_served && pinned[t];
        char metric[64];
        key_metric(m->metrics, metric, sizeof metric);
        printf("%6lld  %-10s  %-22s %4d  %-20s  %-24s %10zu  %s%s%s\n", (long long)m->id, m->task, m->name, m->version,
               m->created_at ? m->created_at : "", metric, m->blob_len, m->published ? "published " : "",
               is_pinned ? "pinned " : "", is_served ? "served" : "");
    }
    for (size_t i = 0; i < n; i++)
        tb_model_record_clear(&rows[i]);
    free(rows);
    return TB_OK;
}

static int parse_id(const char *s, int64_t *ret) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 1)
        return -1;
    *ret = v;
    return 0;
}

int tb_train_versions_main(int argc, char **argv) {
    const char *db = "timbre.db", *dir = NULL;
    int i = 1, keep = -1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc)
            break;
        if (strcmp(argv[i], "--db") == 0)
            db = argv[++i];
        else if (strcmp(argv[i], "--snapshots") == 0)
            dir = argv[++i];
        else
            break;
    }
    const char *cmd = i < argc ? argv[i++] : NULL;
    const char *arg1 = i < argc ? argv[i] : NULL, *arg2 = i + 1 < argc ? argv[i + 1] : NULL;
    int64_t id = 0;
    int nargs = argc - i;
    if (cmd && strcmp(cmd, "prune") == 0 && nargs == 2 && strcmp(arg1, "--keep") == 0) {
        char *end;
        long k = strtol(arg2, &end, 10);
        keep = *end || k < 1 || k > 100000 ? -1 : (int)k;
    }
    int ok = cmd && ((strcmp(cmd, "list") == 0 && nargs == 0) || (strcmp(cmd, "snapshot") == 0 && nargs == 0) ||
                     (strcmp(cmd, "pin") == 0 && nargs == 2 && parse_id(arg2, &id) == 0) ||
                     (strcmp(cmd, "unpin") == 0 && nargs == 1) ||
                     (strcmp(cmd, "rm") == 0 && nargs == 1 && parse_id(arg1, &id) == 0) ||
                     (strcmp(cmd, "prune") == 0 && keep >= 1));
    if (!ok) {
        tb_log(TB_LOG_ERROR, "timbre-train models: expected list, pin TASK ID, unpin TASK, rm ID, prune --keep N or "
                             "snapshot (see timbre-train models --help)");
        return 2;
    }
    struct stat sb;
    if (stat(db, &sb) != 0) {
        tb_log(TB_LOG_ERROR, "%s: no such database", db);
        return 1;
    }
    tb_store *store = NULL;
    tb_status st = tb_store_open(db, TB_STORE_READ_WRITE, &store);
    int snapshot = 0;
    if (st == TB_OK) {
        if (strcmp(cmd, "list") == 0) {
            st = list(store);
        } else if (strcmp(cmd, "pin") == 0) {
            if ((st = tb_store_pin(store, arg1, id)) == TB_OK)
                tb_log(TB_LOG_INFO, "%s pinned to model %lld", arg1, (long long)id);
            snapshot = 1;
        } else if (strcmp(cmd, "unpin") == 0) {
            if ((st = tb_store_unpin(store, arg1)) == TB_OK)
                tb_log(TB_LOG_INFO, "%s unpinned: its published model serves", arg1);
            snapshot = 1;
        } else if (strcmp(cmd, "rm") == 0) {
            if ((st = tb_store_remove_model(store, id)) == TB_OK)
                tb_log(TB_LOG_INFO, "model %lld removed", (long long)id);
        } else if (strcmp(cmd, "snapshot") == 0) {
            snapshot = 1;
        } else {
            size_t removed = 0, files = 0;
            char *fallback = dir ? NULL : tb_snapshot_default_dir(db);
            const char *where = dir ? dir : fallback;
            if ((st = tb_store_prune(store, keep, &removed)) == TB_OK && (st = tb_store_vacuum(store)) == TB_OK &&
                where && tb_snapshot_is_dir(where))
                st = tb_snapshot_prune(where, keep, &files);
            if (st == TB_OK)
                tb_log(TB_LOG_INFO, "pruned %zu versions and %zu snapshot files; kept the %d newest per task", removed,
                       files, keep);
            free(fallback);
        }
    }
    if (st == TB_OK && snapshot)
        st = tb_train_snapshot(store, db, dir);
    if (st != TB_OK)
        tb_log(TB_LOG_ERROR, "%s", tb_error_message());
    tb_store_close(store);
    return st == TB_OK ? 0 : 1;
}
