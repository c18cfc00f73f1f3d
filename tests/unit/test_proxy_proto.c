/* Unit tests for proxy_proto.c: PROXY v1 and v2 headers, what each beginning
 * asks for, and the malformed ones refused. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "lockgate/proxy_proto.h"

#include "check_run.h"

static int parse(const void *buf, size_t len, struct lg_proxy_addr *a)
{
    return lg_proxy_parse(buf, len, a);
}

static const char *addr_text(const struct lg_proxy_addr *a, int *port)
{
    static char text[INET6_ADDRSTRLEN];
    if (a->family == AF_INET) {
        const struct sockaddr_in *s = (const void *)&a->src;
        inet_ntop(AF_INET, &s->sin_addr, text, sizeof(text));
        *port = ntohs(s->sin_port);
    } else {
        const struct sockaddr_in6 *s = (const void *)&a->src;
        inet_ntop(AF_INET6, &s->sin6_addr, text, sizeof(text));
        *port = ntohs(s->sin6_port);
    }
    return text;
}

/* Every strict beginning of TEXT asks for more. */
static void prefixes_need_more(const unsigned char *buf, size_t len)
{
    struct lg_proxy_addr a;
    for (size_t k = 0; k < len; k++)
        ck_assert_msg(parse(buf, k, &a) == 0, "a beginning of %zu bytes was not 0", k);
}

START_TEST(test_v1)
{
    struct lg_proxy_addr a;
    int port;
    const char *h = "PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\nGET / HTTP/1.1\r\n";
    size_t hl = strlen("PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n");
    ck_assert_int_eq(parse(h, strlen(h), &a), (int)hl);
    ck_assert_int_eq(a.family, AF_INET);
    ck_assert_str_eq(addr_text(&a, &port), "203.0.113.7");
    ck_assert_int_eq(port, 51234);
    prefixes_need_more((const unsigned char *)h, hl);

    h = "PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n";
    ck_assert_int_eq(parse(h, strlen(h), &a), (int)strlen(h));
    ck_assert_int_eq(a.family, AF_INET6);
    ck_assert_str_eq(addr_text(&a, &port), "2001:db8::7");
    ck_assert_int_eq(port, 65535);

    h = "PROXY UNKNOWN ffff::1 whatever\r\n";
    ck_assert_int_eq(parse(h, strlen(h), &a), (int)strlen(h));
    ck_assert_int_eq(a.family, AF_UNSPEC);
}
END_TEST

START_TEST(test_v1_malformed)
{
    struct lg_proxy_addr a;
    const char *bad[] = {
        "GET / HTTP/1.1\r\n",
        "PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\n",      /* bare LF */
        "PROXY TCP4 203.0.113.7 10.0.0.1 51234\r\n",        /* a field missing */
        "PROXY TCP4 203.0.113.7 10.0.0.1 51234 443 1\r\n",  /* one too many */
        "PROXY TCP4  203.0.113.7 10.0.0.1 51234 443\r\n",   /* two spaces */
        "PROXY TCP4 203.0.113.7 10.0.0.1 51234 443 \r\n",   /* a trailing space */
        "PROXY TCP4 2001:db8::7 10.0.0.1 51234 443\r\n",    /* v6 in TCP4 */
        "PROXY TCP6 203.0.113.7 2001:db8::1 51234 443\r\n", /* v4 in TCP6 */
        "PROXY TCP4 203.0.113.7 10.0.0.1 65536 443\r\n",    /* port out of range */
        "PROXY TCP4 203.0.113.7 10.0.0.1 051234 443\r\n",   /* leading zero */
        "PROXY TCP4 203.0.113.7 10.0.0.1 +1 443\r\n",
        "PROXY TCP4 203.0.113.777 10.0.0.1 1 443\r\n",
        "PROXY UDP4 203.0.113.7 10.0.0.1 1 443\r\n",
        "proxy TCP4 203.0.113.7 10.0.0.1 1 443\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(parse(bad[i], strlen(bad[i]), &a) == -1, "accepted: %s", bad[i]);
    /* a NUL or a bare LF is refused whether or not the CRLF is in yet */
    static const char nul[] = "PROXY UNKNOWN a\0b\r\n";
    ck_assert_int_eq(parse(nul, sizeof(nul) - 1, &a), -1);
    ck_assert_int_eq(parse(nul, 17, &a), -1);
    ck_assert_int_eq(parse("PROXY UNKNOWN a\nb\r\n", 19, &a), -1);
    /* no CRLF within the longest line a v1 header may have */
    char longline[200];
    memset(longline, 'x', sizeof(longline));
    memcpy(longline, "PROXY TCP4 ", 11);
    ck_assert_int_eq(parse(longline, sizeof(longline), &a), -1);
    ck_assert_int_eq(parse(longline, 100, &a), 0);
}
END_TEST

static size_t v2(unsigned char *out, unsigned char ver_cmd, unsigned char fam, const void *body,
                 size_t blen)
{
    static const unsigned char sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                          0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    memcpy(out, sig, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (unsigned char)(blen >> 8);
    out[15] = (unsigned char)blen;
    memcpy(out + 16, body, blen);
    return 16 + blen;
}

START_TEST(test_v2)
{
    struct lg_proxy_addr a;
    int port;
    unsigned char buf[2048], body[64] = {0};
    /* TCP over IPv4, with a TLV after the addresses */
    unsigned char v4[] = {198,  51,   100,  9,    10,   0,    0,    1,
                          0xC8, 0x32, 0x01, 0xBB, 0x04, 0x00, 0x01, 'x'};
    size_t n = v2(buf, 0x21, 0x11, v4, sizeof(v4));
    memcpy(buf + n, "\x16\x03\x01", 3); /* a ClientHello follows: left alone */
    ck_assert_int_eq(parse(buf, n + 3, &a), (int)n);
    ck_assert_int_eq(a.family, AF_INET);
    ck_assert_str_eq(addr_text(&a, &port), "198.51.100.9");
    ck_assert_int_eq(port, 0xC832);
    prefixes_need_more(buf, n);
    /* TCP over IPv6 */
    inet_pton(AF_INET6, "2001:db8::42", body);
    inet_pton(AF_INET6, "2001:db8::1", body + 16);
    body[32] = 0x30;
    body[33] = 0x39;
    n = v2(buf, 0x21, 0x21, body, 36);
    ck_assert_int_eq(parse(buf, n, &a), (int)n);
    ck_assert_str_eq(addr_text(&a, &port), "2001:db8::42");
    ck_assert_int_eq(port, 12345);
    /* LOCAL (a health check) and UNSPEC carry no address */
    n = v2(buf, 0x20, 0x00, body, 0);
    ck_assert_int_eq(parse(buf, n, &a), (int)n);
    ck_assert_int_eq(a.family, AF_UNSPEC);
    n = v2(buf, 0x21, 0x00, body, 5);
    ck_assert_int_eq(parse(buf, n, &a), (int)n);
    ck_assert_int_eq(a.family, AF_UNSPEC);
}
END_TEST

START_TEST(test_v2_malformed)
{
    struct lg_proxy_addr a;
    unsigned char buf[2048], body[1100] = {0};
    size_t n = v2(buf, 0x11, 0x11, body, 12); /* version 1 in a v2 header */
    ck_assert_int_eq(parse(buf, n, &a), -1);
    n = v2(buf, 0x22, 0x11, body, 12); /* command 2 */
    ck_assert_int_eq(parse(buf, n, &a), -1);
    n = v2(buf, 0x21, 0x11, body, 11); /* IPv4 addresses cut short */
    ck_assert_int_eq(parse(buf, n, &a), -1);
    n = v2(buf, 0x21, 0x21, body, 35);
    ck_assert_int_eq(parse(buf, n, &a), -1);
    n = v2(buf, 0x21, 0x12, body, 12); /* UDP */
    ck_assert_int_eq(parse(buf, n, &a), -1);
    n = v2(buf, 0x21, 0x31, body, 216); /* unix socket */
    ck_assert_int_eq(parse(buf, n, &a), -1);
    n = v2(buf, 0x21, 0x11, body, LG_PROXY_MAX); /* longer than the cap */
    ck_assert_int_eq(parse(buf, 16, &a), -1);
    buf[3] = 0x0B; /* a broken signature */
    ck_assert_int_eq(parse(buf, 12, &a), -1);
    ck_assert_int_eq(parse("\r\nGET", 5, &a), -1);
}
END_TEST

static Suite *proxy_suite(void)
{
    Suite *s = suite_create("proxy_proto");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_v1);
    tcase_add_test(tc, test_v1_malformed);
    tcase_add_test(tc, test_v2);
    tcase_add_test(tc, test_v2_malformed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return check_run(proxy_suite()) ? EXIT_FAILURE : EXIT_SUCCESS; }
