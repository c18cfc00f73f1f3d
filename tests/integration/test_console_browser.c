/* The owner's console in a real browser: this suite starts Redis, the test
 * upstream and lockgate with the harness, makes two accounts (facilities,
 * console users) and a feed key, then runs the browser tests
 * (tests/browser/console.test.mjs: Debian's chromium driven by
 * playwright-core, axe-core on every page) against them. Screenshots of
 * every page at 1280 and 375 px go to $LG_BUILD/console-screenshots/. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "itest.h"

#include "check_run.h"

static void setup(void)
{
    struct itest_opts o = {0};
    itest_start(&o);
}

static void teardown(void) { itest_stop(); }

static const char *made(json_t *j, long st, const char *field)
{
    ck_assert_msg(st == 201, "status %ld", st);
    return itest_json_str(j, field);
}

/* An account with its facilities and one owner; its facts into INFO. */
static void account(json_t *info, const char *tag, const char *name, const char *email,
                    const char *pw, const char *const *facs)
{
    long st;
    json_t *a = itest_adminf(&st, "POST", "/admin/v1/accounts", "{\"name\":\"%s\"}", name);
    char acct[64];
    snprintf(acct, sizeof(acct), "%s", made(a, st, "account_id"));
    json_decref(a);
    json_t *o = json_pack("{s:s, s:s, s:s, s:[]}", "account_id", acct, "email", email, "password",
                          pw, "facilities");
    char path[128];
    snprintf(path, sizeof(path), "/admin/v1/accounts/%s/facilities", acct);
    for (int i = 0; facs[i] != NULL; i++) {
        json_t *f = itest_adminf(&st, "POST", path, "{\"name\":\"%s\"}", facs[i]);
        json_array_append_new(
            json_object_get(o, "facilities"),
            json_pack("{s:s, s:s}", "facility_id", made(f, st, "facility_id"), "name", facs[i]));
        json_decref(f);
    }
    snprintf(path, sizeof(path), "/admin/v1/accounts/%s/users", acct);
    json_t *u = itest_adminf(
        &st, "POST", path, "{\"email\":\"%s\",\"role\":\"owner\",\"password\":\"%s\"}", email, pw);
    made(u, st, "email");
    json_decref(u);
    json_object_set_new(info, tag, o);
}

START_TEST(test_console_in_chromium)
{
    if (itest_skip_wrapped("the browser tests time themselves for a lockgate at full speed"))
        return;
    json_t *info = json_object();
    const char *north[] = {"Northgate Storage", "Eastside Storage", "Riverside Storage", NULL};
    const char *beta[] = {"Beta Self Storage", NULL};
    account(info, "alpha", "Northgate Holdings", "owner@northgate.example", "Owner pass 1!", north);
    account(info, "beta", "Beta Storage Co", "owner@beta.example", "Beta pass 22!", beta);
    long st;
    json_t *fk = itest_admin("POST", "/admin/v1/feed-keys", "{\"name\":\"OverlockRelease\"}", &st);
    json_object_set_new(info, "feed_key",
                        json_pack("{s:s, s:s}", "key_id", made(fk, st, "key_id"), "secret",
                                  itest_json_str(fk, "secret")));
    json_decref(fk);
    json_object_set_new(info, "admin_url", json_string(IT->lg[0].admin_url));
    json_object_set_new(info, "public_url", json_string(IT->lg[0].url));
    json_object_set_new(info, "token", json_string(IT->token));
    char shots[PATH_MAX + 32];
    snprintf(shots, sizeof(shots), "%s/console-screenshots", IT->build);
    json_object_set_new(info, "screenshots", json_string(shots));
    char *file = strdup(itest_path("browser.json"));
    ck_assert_int_eq(json_dump_file(info, file, JSON_INDENT(2)), 0);
    json_decref(info);

    char env_info[PATH_MAX + 16];
    snprintf(env_info, sizeof(env_info), "LG_CONSOLE_INFO=%s", file);
    char *const argv[] = {"node", "tests/browser/console.test.mjs", NULL};
    const char *env[] = {env_info, NULL};
    /* its report goes straight to this suite's output */
    pid_t pid = itest_spawn(argv, "/dev/stdout", "/dev/stderr", env, ITEST_SPAWN_PDEATH);
    int status = itest_wait_pid(pid, itest_scaled_ms(240000));
    if (status == -1) { /* TERM first: playwright then closes its browser */
        kill(-pid, SIGTERM);
        if (itest_wait_pid(pid, 5000) == -1) {
            kill(-pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
    }
    ck_assert_msg(status != -1, "the browser tests did not end within 240 s");
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the browser tests failed (status %d); their report is above", status);
    free(file);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("console_browser");
    TCase *tc = tcase_create("chromium");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_console_in_chromium);
    suite_add_tcase(s, tc);
    return itest_exit_status(check_run(s));
}
