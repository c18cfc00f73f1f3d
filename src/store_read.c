/* The store's reads of keys and facilities and their replies turned into
 * cache entries: the reply's shape is checked here, the fields' meaning and
 * defaults are the cache's (lg_key_field, lg_facility_parse). */
#include <stdio.h>
#include <string.h>

#include "lockgate/store_read.h"

/* Returns every existing facility of the set as quartets: id, account_id,
 * name, included. A field the hash lacks stays nil (a Lua false), so that
 * its default is lg_facility_parse's, not the script's. */
static struct lg_script facilities_load = {
    .name = "facilities_load",
    .source = "local ids = redis.call('SMEMBERS', KEYS[1])\n"
              "local out = {}\n"
              "for _, id in ipairs(ids) do\n"
              "  local f = redis.call('HMGET', ARGV[1] .. 'fac:' .. id, 'account_id', 'name', "
              "'included')\n"
              "  if f[1] then\n"
              "    out[#out+1] = id; out[#out+1] = f[1]; out[#out+1] = f[2]; out[#out+1] = f[3]\n"
              "  end\n"
              "end\n"
              "return out\n",
};

int lg_store_read_facilities(struct lg_store *st, const char *set, lg_store_cb *cb, void *arg)
{
    const char *argv[] = {set, lg_store_prefix(st)};
    return lg_store_script(st, &facilities_load, cb, arg, 1, 2, argv, NULL);
}

int lg_store_read_facility(struct lg_store *st, const char *id, lg_store_cb *cb, void *arg)
{
    char key[128];
    snprintf(key, sizeof(key), "%sfac:%s", lg_store_prefix(st), id);
    const char *argv[] = {"HMGET", key, "account_id", "name", "included"};
    return lg_store_argv(st, cb, arg, 5, argv, NULL);
}

static bool str_reply(const redisReply *r) { return r != NULL && r->type == REDIS_REPLY_STRING; }

static const char *text(const redisReply *r) { return str_reply(r) ? r->str : NULL; }

int lg_store_facility_from(const char *id, redisReply *const *e, struct lg_facility *out)
{
    return lg_facility_parse(out, id, text(e[0]), text(e[1]), text(e[2]));
}

int lg_store_facilities_each(const redisReply *reply, lg_facility_fn *fn, void *arg)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements % 4 != 0) return -1;
    for (size_t i = 0; fn != NULL && i + 3 < reply->elements; i += 4) {
        redisReply **e = reply->element + i;
        struct lg_facility f;
        if (str_reply(e[0]) && lg_store_facility_from(e[0]->str, e + 1, &f) == 1) fn(&f, arg);
    }
    return 0;
}

static void put_loaded(const struct lg_facility *f, void *arg)
{
    lg_cache_facility_put(arg, f->id, f->account_id, f->name, f->included);
}

int lg_store_facilities_into(struct lg_cache *c, const redisReply *reply)
{
    if (lg_store_facilities_each(reply, NULL, NULL) < 0) return -1;
    lg_cache_facilities_flush(c);
    lg_store_facilities_each(reply, put_loaded, c);
    return 0;
}

int lg_store_facility_from_reply(const char *id, const redisReply *reply, struct lg_facility *out)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return -1;
    return lg_store_facility_from(id, reply->element, out);
}

struct lg_key *lg_store_key_from_reply(const char *key_id, const redisReply *hash,
                                       const redisReply *members, const struct lg_config *cfg)
{
    if (hash == NULL || hash->type != REDIS_REPLY_ARRAY || hash->elements == 0 ||
        hash->elements % 2 != 0)
        return NULL;
    struct lg_key *k = lg_key_new(key_id, cfg);
    if (k == NULL) return NULL;
    for (size_t i = 0; i + 1 < hash->elements; i += 2) {
        const redisReply *f = hash->element[i], *v = hash->element[i + 1];
        if (!str_reply(f) || !str_reply(v) || lg_key_field(k, f->str, v->str, v->len) < 0) goto err;
    }
    if (members != NULL && members->type == REDIS_REPLY_ARRAY && members->elements > 0) {
        if (lg_key_scope_reserve(k, members->elements) < 0) goto err;
        for (size_t i = 0; i < members->elements; i++)
            if (str_reply(members->element[i]))
                lg_key_scope_add(k, members->element[i]->str, members->element[i]->len);
    }
    if (lg_key_done(k) < 0) goto err;
    return k;
err:
    lg_key_unref(k);
    return NULL;
}
