/* Loading the published models. */
#include "state.h"

#include <stdlib.h>
#include <string.h>

static void served_free(tb_served_model *m) {
    if (!m)
        return;
    tb_predictor_free(m->predictor);
    free(m->task);
    free(m->kind);
    free(m->name);
    free(m->created_at);
    free(m->metrics);
    free(m);
}

tb_server_state *tb_server_state_free(tb_server_state *s) {
    if (!s)
        return NULL;
    served_free(s->genre);
    served_free(s->popularity);
    tb_store_close(s->store);
    free(s);
    return NULL;
}

/* Loads the published model of `task`; *ret stays NULL when none is published. */
static tb_status load_task(tb_store *store, const char *task, tb_task expected, tb_served_model **ret) {
    tb_model_record rec;
    tb_status st = tb_store_get_published(store, task, &rec);
    if (st == TB_NOT_FOUND)
        return TB_OK;
    if (st != TB_OK)
        return st;
    tb_served_model *m = calloc(1, sizeof *m);
    if (!m) {
        tb_model_record_clear(&rec);
        return tb_error(TB_NOMEM, "out of memory");
    }
    st = tb_predictor_load(rec.blob, rec.blob_len, &m->predictor);
    if (st != TB_OK) {
        tb_error_prefix(st, "published %s model '%s' version %d", task, rec.name, rec.version);
    } else if (m->predictor->model->task != expected) {
        st = tb_error(TB_CORRUPT, "published %s model '%s' version %d is not a %s model", task, rec.name,
                      rec.version, expected == TB_TASK_CLASSIFY ? "classification" : "regression");
    }
    if (st != TB_OK) {
        tb_model_record_clear(&rec);
        served_free(m);
        return st;
    }
    /* Take the strings over from the record. */
    m->id = rec.id;
    m->task = rec.task;
    m->kind = rec.kind;
    m->name = rec.name;
    m->created_at = rec.created_at;
    m->version = rec.version;
    m->metrics = rec.metrics;
    rec.task = rec.kind = rec.name = rec.created_at = rec.metrics = NULL;
    tb_model_record_clear(&rec);
    *ret = m;
    return TB_OK;
}

tb_status tb_server_state_load(const char *db_path, tb_server_state **ret) {
    tb_server_state *s = calloc(1, sizeof *s);
    if (!s)
        return tb_error(TB_NOMEM, "out of memory");
    tb_status st = tb_store_open(db_path, TB_STORE_READ_ONLY, &s->store);
    if (st == TB_OK)
        st = load_task(s->store, "genre", TB_TASK_CLASSIFY, &s->genre);
    if (st == TB_OK)
        st = load_task(s->store, "popularity", TB_TASK_REGRESS, &s->popularity);
    if (st != TB_OK) {
        tb_server_state_free(s);
        return st;
    }
    *ret = s;
    return TB_OK;
}
