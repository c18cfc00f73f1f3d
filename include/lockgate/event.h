/* Events (SPEC section 9): the JSON published on the events channel. */
#ifndef LG_EVENT_H
#define LG_EVENT_H

#include <stddef.h>

struct lg_event {
    char id[48];   /* stream id "ms-seq" */
    char type[32]; /* "key.disabled", "facility.excluded", ... */
    char account_id[72];
    char key_id[72];
    char facility_id[72];
    char unit_id[72];
    int included; /* 1, 0, or -1 when absent */
    char at[40];
};

/* Parses one event JSON (bounded, strict types). Missing optional ids are "".
 * Returns 0, or -1 when it is not an event. */
int lg_event_parse(const char *json, size_t len, struct lg_event *ev);

struct redisReply;
/* The same event from an entry of the events stream (XRANGE's [id, [field,
 * value, ...]], borrowed). Returns 0, or -1 when it is not an event. */
int lg_event_from_entry(const struct redisReply *entry, struct lg_event *ev);

#endif
