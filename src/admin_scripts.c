/* The admin API's Lua scripts: one per request, so that a write, its checks,
 * its event (stream + pub/sub) and its audit entry commit together. Layout as
 * in schema.h.
 *
 * Every script gets ARGV[1..7] = prefix, now (ISO), events MAXLEN, audit
 * MAXLEN, request id, client IP, actor (lg_admin_call_common), then its own
 * arguments from ARGV[8]. The object's own keys come in KEYS; the events and audit
 * streams and keys reached through set members (a facility's hash while
 * checking a key's scope, every key's scope set when a facility goes) are
 * derived from the prefix inside the script.
 *
 * Expected refusals are returned as error replies "code:message" (not_found,
 * bad_request, conflict) that admin.c maps to HTTP. Views returned to C:
 *   account, facility:  {id, HGETALL flat}
 *   key:                {id, flat of the public fields (never verifier or
 *                        sealed), facility ids} */
#include "admin_internal.h"

#define PRELUDE                                                                                                                                                      \
    "local P, NOW, EVMAX, AUMAX, RID, CIP = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], "                                                                           \
    "ARGV[6]\n"                                                                                                                                                      \
    "local ACT = ARGV[7]\n"                                                                                                                                          \
    "local function fail(code, msg) return redis.error_reply(code .. ':' .. msg) end\n"                                                                              \
    "local EVIDS = {'key_id', 'facility_id', 'unit_id'}\n" /* One event: XADD to the stream, then                                                                    \
                                                              PUBLISH the same as JSON with its                                                                      \
                                                              id. */                                                                                                 \
    "local function emit(t, f)\n"                                                                                                                                    \
    "  local acct = f.account_id or ''\n"                                                                                                                            \
    "  local a = {'type', t, 'account_id', acct}\n"                                                                                                                  \
    "  local ev = {type = t, account_id = acct, at = NOW}\n"                                                                                                         \
    "  for _, k in ipairs(EVIDS) do\n"                                                                                                                               \
    "    if f[k] then a[#a + 1] = k; a[#a + 1] = f[k]; ev[k] = f[k] end\n"                                                                                           \
    "  end\n"                                                                                                                                                        \
    "  if f.included ~= nil then\n"                                                                                                                                  \
    "    a[#a + 1] = 'included'; a[#a + 1] = f.included and '1' or '0'; ev.included = "                                                                              \
    "f.included\n"                                                                                                                                                   \
    "  end\n"                                                                                                                                                        \
    "  if f.name then a[#a + 1] = 'name'; a[#a + 1] = f.name; ev.name = f.name end\n"                                                                                \
    "  a[#a + 1] = 'at'; a[#a + 1] = NOW\n"                                                                                                                          \
    "  local id = redis.call('XADD', P .. 'events', 'MAXLEN', '~', EVMAX, '*', unpack(a))\n"                                                                         \
    "  ev.id = id\n"                                                                                                                                                 \
    "  redis.call('PUBLISH', P .. 'events', cjson.encode(ev))\n"                                                                                                     \
    "  return id\n"                                                                                                                                                  \
    "end\n"                                                                                                                                                          \
    "local function audit(action, f)\n"                                                                                                                              \
    "  local a = {'action', action, 'account_id', f.account_id or ''}\n"                                                                                             \
    "  for _, k in ipairs(EVIDS) do\n"                                                                                                                               \
    "    if f[k] then a[#a + 1] = k; a[#a + 1] = f[k] end\n"                                                                                                         \
    "  end\n"                                                                                                                                                        \
    "  if CIP ~= '' then a[#a + 1] = 'client_ip'; a[#a + 1] = CIP end\n"                                                                                             \
    "  if RID ~= '' then a[#a + 1] = 'request_id'; a[#a + 1] = RID end\n"                                                                                            \
    "  if ACT ~= '' then a[#a + 1] = 'actor'; a[#a + 1] = ACT end\n"                                                                                                 \
    "  a[#a + 1] = 'outcome'; a[#a + 1] = 'ok'\n"                                                                                                                    \
    "  a[#a + 1] = 'at'; a[#a + 1] = NOW\n"                                                                                                                          \
    "  redis.call('XADD', P .. 'audit', 'MAXLEN', '~', AUMAX, '*', unpack(a))\n"                                                                                     \
    "end\n"                                                                                                                                                          \
    "local KF = {'account_id', 'role', 'name', 'all_facilities', 'status', 'rate_per_sec',\n"                                                                        \
    "  'burst', 'allowed_cidrs', 'created_at', 'updated_at', 'last_used_at', 'expires_at'}\n"                                                                        \
    "local function keyview(kid)\n"                                                                                                                                  \
    "  local k = P .. 'key:' .. kid\n"                                                                                                                               \
    "  local v = redis.call('HMGET', k, unpack(KF))\n"                                                                                                               \
    "  local flat = {}\n"                                                                                                                                            \
    "  for i, f in ipairs(KF) do flat[#flat + 1] = f; flat[#flat + 1] = v[i] or '' end\n"                                                                            \
    "  return {kid, flat, redis.call('SMEMBERS', k .. ':facilities')}\n"                                                                                             \
    "end\n"                                                                                                                                                          \
    "local function facview(fid) return {fid, redis.call('HGETALL', P .. 'fac:' .. fid)} end\n"                                                                      \
    "local function acctview(aid) return {aid, redis.call('HGETALL', P .. 'acct:' .. aid)} end\n" /* A key's facilities must all exist and belong to its account. */ \
    "local function scope_check(acct, facs)\n"                                                                                                                       \
    "  for _, fac in ipairs(facs) do\n"                                                                                                                              \
    "    if redis.call('HGET', P .. 'fac:' .. fac, 'account_id') ~= acct then\n"                                                                                     \
    "      return 'facilities: ' .. fac .. ' is not a facility of account ' .. acct\n"                                                                               \
    "    end\n"                                                                                                                                                      \
    "  end\n"                                                                                                                                                        \
    "  return nil\n"                                                                                                                                                 \
    "end\n"

#define SCRIPT(var, text) struct lg_script var = {.name = #var, .source = PRELUDE text}

/* KEYS: accounts, acct:{id}. ARGV[8] id, [9] name. */
SCRIPT(lg_admin_script_account_create,
       "local id, name = ARGV[8], ARGV[9]\n"
       "if redis.call('EXISTS', KEYS[2]) == 1 then\n"
       "  return fail('conflict', 'account ' .. id .. ' already exists')\n"
       "end\n"
       "redis.call('HSET', KEYS[2], 'name', name, 'created_at', NOW)\n"
       "redis.call('SADD', KEYS[1], id)\n"
       "emit('account.created', {account_id = id})\n"
       "audit('account.created', {account_id = id})\n"
       "return acctview(id)\n");

/* KEYS: acct:{id}. ARGV[8] id. */
SCRIPT(lg_admin_script_account_get,
       "if redis.call('EXISTS', KEYS[1]) == 0 then\n"
       "  return fail('not_found', 'account ' .. ARGV[8] .. ' not found')\n"
       "end\n"
       "return acctview(ARGV[8])\n");

/* KEYS: accounts. */
SCRIPT(lg_admin_script_account_list,
       "local out = {}\n"
       "for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do out[#out + 1] = acctview(id) end\n"
       "return out\n");

/* KEYS: acct:{a}, acct:{a}:facilities, facilities, fac:{f}.
 * ARGV[8] account, [9] facility id, [10] name. */
SCRIPT(lg_admin_script_facility_create,
       "local acct, fac, name = ARGV[8], ARGV[9], ARGV[10]\n"
       "if redis.call('EXISTS', KEYS[1]) == 0 then\n"
       "  return fail('not_found', 'account ' .. acct .. ' not found')\n"
       "end\n"
       "if redis.call('EXISTS', KEYS[4]) == 1 then\n"
       "  return fail('conflict', 'facility ' .. fac .. ' already exists')\n"
       "end\n"
       "redis.call('HSET', KEYS[4], 'account_id', acct, 'name', name, 'included', '1',\n"
       "  'created_at', NOW, 'updated_at', NOW)\n"
       "redis.call('SADD', KEYS[2], fac)\n"
       "redis.call('SADD', KEYS[3], fac)\n"
       "emit('facility.created', {account_id = acct, facility_id = fac, included = true,\n"
       "  name = name})\n"
       "audit('facility.created', {account_id = acct, facility_id = fac})\n"
       "return facview(fac)\n");

/* KEYS: fac:{f}. ARGV[8] facility id. */
SCRIPT(lg_admin_script_facility_get,
       "if redis.call('EXISTS', KEYS[1]) == 0 then\n"
       "  return fail('not_found', 'facility ' .. ARGV[8] .. ' not found')\n"
       "end\n"
       "return facview(ARGV[8])\n");

/* KEYS: acct:{a}, acct:{a}:facilities. ARGV[8] account. */
SCRIPT(lg_admin_script_facility_list,
       "if redis.call('EXISTS', KEYS[1]) == 0 then\n"
       "  return fail('not_found', 'account ' .. ARGV[8] .. ' not found')\n"
       "end\n"
       "local out = {}\n"
       "for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do out[#out + 1] = facview(id) end\n"
       "return out\n");

/* KEYS: fac:{f}. ARGV[8] facility id, [9] included ('', '1', '0'),
 * [10] '1' when a name is given, [11] the name.
 * Events: a change of inclusion (or a repeated include/exclude without a
 * rename) is facility.included/excluded, audited, carrying the current name;
 * otherwise facility.updated. Exactly one event per PATCH. */
SCRIPT(lg_admin_script_facility_patch,
       "local fac, inc, hasname, name = ARGV[8], ARGV[9], ARGV[10] == '1', ARGV[11]\n"
       "local cur = redis.call('HMGET', KEYS[1], 'account_id', 'name', 'included')\n"
       "if not cur[1] then return fail('not_found', 'facility ' .. fac .. ' not found') end\n"
       "local acct = cur[1]\n"
       "local renamed = hasname and name ~= cur[2]\n"
       "if not hasname then name = cur[2] or '' end\n"
       "local f = {'name', name, 'updated_at', NOW}\n"
       "if inc ~= '' then f[#f + 1] = 'included'; f[#f + 1] = inc end\n"
       "redis.call('HSET', KEYS[1], unpack(f))\n"
       "local now_inc = inc ~= '' and inc or (cur[3] or '1')\n"
       "local ev = {account_id = acct, facility_id = fac, included = now_inc == '1', name = name}\n"
       "if inc ~= '' and (inc ~= cur[3] or not renamed) then\n"
       "  local t = now_inc == '1' and 'facility.included' or 'facility.excluded'\n"
       "  emit(t, ev)\n"
       "  audit(t, {account_id = acct, facility_id = fac})\n"
       "else\n"
       "  emit('facility.updated', ev)\n"
       "  audit('facility.updated', {account_id = acct, facility_id = fac})\n"
       "end\n"
       "return facview(fac)\n");

/* KEYS: fac:{f}, facilities. ARGV[8] facility id. Removes the facility from
 * the scope of every key of its account (keys only ever hold facilities of
 * their own account). */
SCRIPT(lg_admin_script_facility_delete,
       "local fac = ARGV[8]\n"
       "local cur = redis.call('HMGET', KEYS[1], 'account_id', 'name')\n"
       "if not cur[1] then return fail('not_found', 'facility ' .. fac .. ' not found') end\n"
       "local acct = cur[1]\n"
       "for _, kid in ipairs(redis.call('SMEMBERS', P .. 'acct:' .. acct .. ':keys')) do\n"
       "  redis.call('SREM', P .. 'key:' .. kid .. ':facilities', fac)\n"
       "end\n"
       "redis.call('DEL', KEYS[1])\n"
       "redis.call('SREM', P .. 'acct:' .. acct .. ':facilities', fac)\n"
       "redis.call('SREM', KEYS[2], fac)\n"
       "emit('facility.deleted', {account_id = acct, facility_id = fac, included = false,\n"
       "  name = cur[2] or ''})\n"
       "audit('facility.deleted', {account_id = acct, facility_id = fac})\n"
       "return 1\n");

/* KEYS: key:{k}, key:{k}:facilities, acct:{a}:keys (or feedkeys), and for API
 * keys acct:{a}. ARGV[8] JSON {key_id, account_id, role, name, verifier,
 * sealed, all_facilities, rate_per_sec, burst, allowed_cidrs, expires_at,
 * facilities[]}, every value a string. */
SCRIPT(lg_admin_script_key_create,
       "local s = cjson.decode(ARGV[8])\n"
       "local kid, acct = s.key_id, s.account_id\n"
       "if s.role == 'api' then\n"
       "  if redis.call('EXISTS', KEYS[4]) == 0 then\n"
       "    return fail('not_found', 'account ' .. acct .. ' not found')\n"
       "  end\n"
       "  local bad = scope_check(acct, s.facilities)\n"
       "  if bad then return fail('bad_request', bad) end\n"
       "end\n"
       "if redis.call('EXISTS', KEYS[1]) == 1 then\n"
       "  return fail('conflict', 'key ' .. kid .. ' already exists')\n"
       "end\n"
       "redis.call('HSET', KEYS[1], 'account_id', acct, 'role', s.role, 'name', s.name,\n"
       "  'verifier', s.verifier, 'sealed', s.sealed, 'all_facilities', s.all_facilities,\n"
       "  'status', 'active', 'rate_per_sec', s.rate_per_sec, 'burst', s.burst,\n"
       "  'allowed_cidrs', s.allowed_cidrs, 'created_at', NOW, 'updated_at', NOW,\n"
       "  'last_used_at', '', 'expires_at', s.expires_at)\n"
       "if #s.facilities > 0 then redis.call('SADD', KEYS[2], unpack(s.facilities)) end\n"
       "redis.call('SADD', KEYS[3], kid)\n"
       "emit('key.created', {account_id = acct, key_id = kid})\n"
       "audit('key.created', {account_id = acct, key_id = kid})\n"
       "return keyview(kid)\n");

/* KEYS: key:{k}. ARGV[8] key id. */
SCRIPT(lg_admin_script_key_get, "if redis.call('EXISTS', KEYS[1]) == 0 then\n"
                                "  return fail('not_found', 'key ' .. ARGV[8] .. ' not found')\n"
                                "end\n"
                                "return keyview(ARGV[8])\n");

/* KEYS: the set of key ids (acct:{a}:keys or feedkeys) and, for an account,
 * acct:{a}. ARGV[8] account id (for the message). */
SCRIPT(lg_admin_script_key_list,
       "if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 0 then\n"
       "  return fail('not_found', 'account ' .. ARGV[8] .. ' not found')\n"
       "end\n"
       "local out = {}\n"
       "for _, kid in ipairs(redis.call('SMEMBERS', KEYS[1])) do out[#out + 1] = keyview(kid) end\n"
       "return out\n");

/* KEYS: key:{k}. ARGV[8] key id. The read and its audit entry go together;
 * returns the sealed secret for C to open. */
SCRIPT(lg_admin_script_key_reveal,
       "local cur = redis.call('HMGET', KEYS[1], 'account_id', 'sealed')\n"
       "if not cur[1] then return fail('not_found', 'key ' .. ARGV[8] .. ' not found') end\n"
       "audit('key.revealed', {account_id = cur[1], key_id = ARGV[8]})\n"
       "return cur[2] or ''\n");

/* KEYS: key:{k}, key:{k}:facilities. ARGV[8] key id, [9] JSON of the fields
 * to set (strings; facilities[] replaces the scope set when all_facilities is
 * given, which C guarantees whenever facilities is). */
SCRIPT(lg_admin_script_key_update,
       "local kid, p = ARGV[8], cjson.decode(ARGV[9])\n"
       "local cur = redis.call('HMGET', KEYS[1], 'account_id', 'role')\n"
       "if not cur[1] then return fail('not_found', 'key ' .. kid .. ' not found') end\n"
       "local acct, role = cur[1], cur[2]\n"
       "if p.all_facilities ~= nil and role ~= 'api' then\n"
       "  return fail('bad_request', 'all_facilities: a feed key has no facility scope')\n"
       "end\n"
       "if p.facilities then\n"
       "  local bad = scope_check(acct, p.facilities)\n"
       "  if bad then return fail('bad_request', bad) end\n"
       "end\n"
       "local f = {'updated_at', NOW}\n"
       "for _, k in ipairs({'name', 'all_facilities', 'rate_per_sec', 'burst', 'allowed_cidrs',\n"
       "    'expires_at'}) do\n"
       "  if p[k] ~= nil then f[#f + 1] = k; f[#f + 1] = p[k] end\n"
       "end\n"
       "redis.call('HSET', KEYS[1], unpack(f))\n"
       "if p.all_facilities ~= nil then\n"
       "  redis.call('DEL', KEYS[2])\n"
       "  if p.facilities and #p.facilities > 0 then\n"
       "    redis.call('SADD', KEYS[2], unpack(p.facilities))\n"
       "  end\n"
       "end\n"
       "emit('key.updated', {account_id = acct, key_id = kid})\n"
       "audit('key.updated', {account_id = acct, key_id = kid})\n"
       "return keyview(kid)\n");

/* KEYS: key:{k}. ARGV[8] key id, [9] 'active' or 'disabled', [10] the event
 * (key.enabled / key.disabled). Repeating one re-announces it. */
SCRIPT(lg_admin_script_key_status,
       "local kid = ARGV[8]\n"
       "local acct = redis.call('HGET', KEYS[1], 'account_id')\n"
       "if not acct then return fail('not_found', 'key ' .. kid .. ' not found') end\n"
       "redis.call('HSET', KEYS[1], 'status', ARGV[9], 'updated_at', NOW)\n"
       "emit(ARGV[10], {account_id = acct, key_id = kid})\n"
       "audit(ARGV[10], {account_id = acct, key_id = kid})\n"
       "return keyview(kid)\n");

/* KEYS: key:{old}, key:{old}:facilities, key:{new}, key:{new}:facilities.
 * ARGV[8] old id, [9] new id, [10] verifier, [11] sealed, [12] grace seconds,
 * [13] now + grace (ISO; '' for grace 0).
 * The new key copies name, role, scope, limits, CIDRs and a still-future
 * expiry. Grace 0 disables the old key; a grace sets its expires_at to
 * now + grace unless it expires sooner already. One event, key.rotated,
 * names the OLD key (the one every gateway must drop from its cache; the new
 * key was never cached). Audited as key.rotated (old key) and key.created
 * (new key). */
SCRIPT(lg_admin_script_key_rotate,
       "local old, new, grace, till = ARGV[8], ARGV[9], tonumber(ARGV[12]), ARGV[13]\n"
       "local c = redis.call('HMGET', KEYS[1], 'account_id', 'role', 'name', 'all_facilities',\n"
       "  'rate_per_sec', 'burst', 'allowed_cidrs', 'expires_at')\n"
       "if not c[1] then return fail('not_found', 'key ' .. old .. ' not found') end\n"
       "if redis.call('EXISTS', KEYS[3]) == 1 then\n"
       "  return fail('conflict', 'key ' .. new .. ' already exists')\n"
       "end\n"
       "local acct, role, exp = c[1], c[2] or 'api', c[8] or ''\n"
       "local newexp = ''\n"
       "if exp ~= '' and exp > NOW then newexp = exp end\n"
       "redis.call('HSET', KEYS[3], 'account_id', acct, 'role', role, 'name', c[3] or '',\n"
       "  'verifier', ARGV[10], 'sealed', ARGV[11], 'all_facilities', c[4] or '0',\n"
       "  'status', 'active', 'rate_per_sec', c[5] or '', 'burst', c[6] or '',\n"
       "  'allowed_cidrs', c[7] or '', 'created_at', NOW, 'updated_at', NOW,\n"
       "  'last_used_at', '', 'expires_at', newexp)\n"
       "local facs = redis.call('SMEMBERS', KEYS[2])\n"
       "if #facs > 0 then redis.call('SADD', KEYS[4], unpack(facs)) end\n"
       "if role == 'feed' then redis.call('SADD', P .. 'feedkeys', new)\n"
       "else redis.call('SADD', P .. 'acct:' .. acct .. ':keys', new) end\n"
       "if grace == 0 then\n"
       "  redis.call('HSET', KEYS[1], 'status', 'disabled', 'updated_at', NOW)\n"
       "elseif exp == '' or exp > till then\n"
       "  redis.call('HSET', KEYS[1], 'expires_at', till, 'updated_at', NOW)\n"
       "end\n"
       "emit('key.rotated', {account_id = acct, key_id = old})\n"
       "audit('key.rotated', {account_id = acct, key_id = old})\n"
       "audit('key.created', {account_id = acct, key_id = new})\n"
       "return keyview(new)\n");

/* KEYS: key:{k}, key:{k}:facilities, rl:{k}. ARGV[8] key id. */
SCRIPT(lg_admin_script_key_delete,
       "local kid = ARGV[8]\n"
       "local c = redis.call('HMGET', KEYS[1], 'account_id', 'role')\n"
       "if not c[1] then return fail('not_found', 'key ' .. kid .. ' not found') end\n"
       "redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])\n"
       "if c[2] == 'feed' then redis.call('SREM', P .. 'feedkeys', kid)\n"
       "else redis.call('SREM', P .. 'acct:' .. c[1] .. ':keys', kid) end\n"
       "emit('key.deleted', {account_id = c[1], key_id = kid})\n"
       "audit('key.deleted', {account_id = c[1], key_id = kid})\n"
       "return 1\n");

/* KEYS: fac:{f}. ARGV[8] facility id, [9] unit id. Returns the event id. */
SCRIPT(lg_admin_script_lock_changed,
       "local acct = redis.call('HGET', KEYS[1], 'account_id')\n"
       "if not acct then return fail('not_found', 'facility ' .. ARGV[8] .. ' not found') end\n"
       "return emit('lock.changed', {account_id = acct, facility_id = ARGV[8],\n"
       "  unit_id = ARGV[9]})\n");
