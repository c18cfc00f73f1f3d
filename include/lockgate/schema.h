/* The Redis data layout: every key lockgate reads or writes, under the
 * configured prefix P (e.g. "lg:"). The admin API (admin.c, Lua scripts)
 * is the only writer; gateways read and keep caches exact from events.
 *
 *   P accounts                  set    all account ids
 *   P acct:{acct}               hash   name, created_at
 *   P acct:{acct}:facilities    set    facility ids of the account
 *   P acct:{acct}:keys          set    key ids of the account
 *   P facilities                set    all facility ids (gateway load, feed snapshot)
 *   P fac:{fac}                 hash   account_id, name, included ("1"/"0"),
 *                                      created_at, updated_at
 *   P feedkeys                  set    key ids of platform feed keys
 *   P key:{key}                 hash   account_id ("" for feed keys), role ("api"/"feed"),
 *                                      name, verifier (hex HMAC), sealed (base64 AES-GCM),
 *                                      all_facilities ("1"/"0"), status ("active"/"disabled"),
 *                                      rate_per_sec, burst ("" = config default),
 *                                      allowed_cidrs (comma-separated, "" = any),
 *                                      created_at, updated_at, last_used_at,
 *                                      expires_at ("" = never; ISO 8601 UTC)
 *   P key:{key}:facilities      set    scope when all_facilities is "0"
 *   P rl:{key}                  string GCRA theoretical arrival time (integer ticks of 1/1024 ms)
 *   P feed:snapshot:{token}     zset   the facility ids of one feed snapshot being sent (score 0,
 *                                      read in id order); deleted at its end, else expires 60 s
 *                                      after its last page
 *   P events                    stream every change; fields: type, account_id, key_id,
 *                                      facility_id, unit_id, included, name, at
 *                                      (absent fields omitted); trimmed MAXLEN ~
 *   P audit                     stream action, account_id, key_id, facility_id, unit_id,
 *                                      client_ip, request_id, outcome, at
 *   channel P events            pub/sub the same event as one JSON object
 *                                      {"id","type","account_id",...,"at"}, id = stream id
 *
 * Times are ISO 8601 UTC with milliseconds: "2026-11-26T01:11:06.123Z".
 */
#ifndef LG_SCHEMA_H
#define LG_SCHEMA_H

#define LG_ROLE_API  "api"
#define LG_ROLE_FEED "feed"

#endif
