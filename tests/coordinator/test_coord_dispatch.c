/* The agent side over a real nng socket: a REQ client talks to rf_dispatch
 * (REP, several contexts) backed by a real SQLite store. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "dispatch.h"
#include "rf_net.h"
#include "rf_util.h"
#include "testutil.h"

#define TIMEOUT_MS 5000

typedef struct fixture {
    tu_env env;
    rf_dispatch *d;
    nng_socket req;
} fixture;

static int
setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));

    if (fx == NULL || tu_env_open(&fx->env) != 0) {
        return -1;
    }
    /* ipc in the temp dir: no port to race for */
    snprintf(fx->env.cfg.nng_listen, sizeof(fx->env.cfg.nng_listen), "ipc://%s/agents.sock",
             fx->env.dir);
    fx->env.cfg.lease_ttl_ms = 9000;
    if (rf_dispatch_start(fx->env.st, &fx->env.cfg, &fx->d) != RF_OK) {
        return -1;
    }
    if (nng_req0_open(&fx->req) != 0 || rf_net_socket_setup(fx->req) != RF_OK) {
        return -1;
    }
    nng_socket_set_ms(fx->req, NNG_OPT_RECVTIMEO, TIMEOUT_MS);
    nng_socket_set_ms(fx->req, NNG_OPT_SENDTIMEO, TIMEOUT_MS);
    if (nng_dial(fx->req, fx->env.cfg.nng_listen, NULL, 0) != 0) {
        return -1;
    }
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture *fx = *state;
    nng_close(fx->req);
    rf_dispatch_stop(&fx->d);
    assert_null(fx->d);
    tu_env_close(&fx->env);
    free(fx);
    return 0;
}

static void
call(fixture *fx, const rf_msg *req, rf_msg *rep)
{
    char err[256] = "";
    rf_err rv = rf_net_call(fx->req, req, rep, TIMEOUT_MS, err, sizeof(err));
    if (rv != RF_OK) {
        fail_msg("call failed: %s (%s)", rf_strerror(rv), err);
    }
}

static void
hello(fixture *fx, const char *agent)
{
    rf_msg m, rep;

    memset(&m, 0, sizeof(m));
    m.type = RF_MSG_HELLO;
    snprintf(m.u.hello.agent_id, sizeof(m.u.hello.agent_id), "%s", agent);
    snprintf(m.u.hello.hostname, sizeof(m.u.hello.hostname), "host-%s", agent);
    snprintf(m.u.hello.version, sizeof(m.u.hello.version), "0.1.0");
    snprintf(m.u.hello.compositor, sizeof(m.u.hello.compositor), "cpu");
    m.u.hello.cpu_cores = 2;
    m.u.hello.slots = 1;
    m.u.hello.n_encoders = 1;
    snprintf(m.u.hello.encoders[0], sizeof(m.u.hello.encoders[0]), "libx264");
    call(fx, &m, &rep);
    assert_int_equal(rep.type, RF_MSG_WELCOME);
    assert_string_equal(rep.u.welcome.agent_id, agent);
    assert_int_equal(rep.u.welcome.lease_ttl_ms, 9000);
    assert_int_equal(rep.u.welcome.heartbeat_ms, 3000);
    rf_msg_clear(&rep);
}

static void
lease(fixture *fx, const char *agent, rf_msg *rep)
{
    rf_msg m;

    memset(&m, 0, sizeof(m));
    m.type = RF_MSG_LEASE_REQ;
    snprintf(m.u.lease_req.agent_id, sizeof(m.u.lease_req.agent_id), "%s", agent);
    m.u.lease_req.free_slots = 1;
    call(fx, &m, rep);
}

/* Sends raw bytes and returns the reply decoded. */
static void
raw(fixture *fx, const void *bytes, size_t len, rf_msg *rep)
{
    nng_msg *out = NULL, *in = NULL;
    char err[256];

    assert_int_equal(nng_msg_alloc(&out, 0), 0);
    assert_int_equal(nng_msg_append(out, bytes, len), 0);
    assert_int_equal(nng_sendmsg(fx->req, out, 0), 0);
    assert_int_equal(nng_recvmsg(fx->req, &in, 0), 0);
    assert_int_equal(rf_net_decode(in, rep, err, sizeof(err)), RF_OK);
    nng_msg_free(in);
}

static void
test_hello_welcome(void **state)
{
    fixture *fx = *state;
    hello(fx, "agent-1");
    hello(fx, "agent-1"); /* a restarted agent says hello again */
}

static void
test_lease_unknown_agent_and_no_work(void **state)
{
    fixture *fx = *state;
    rf_msg rep;

    lease(fx, "never-said-hello", &rep);
    assert_int_equal(rep.type, RF_MSG_REFUSED);
    assert_string_equal(rep.u.refused.code, "unknown_agent");
    rf_msg_clear(&rep);

    hello(fx, "agent-1");
    lease(fx, "agent-1", &rep);
    assert_int_equal(rep.type, RF_MSG_NO_WORK);
    assert_int_equal(rep.u.no_work.retry_ms, RF_DISPATCH_RETRY_MS);
    rf_msg_clear(&rep);
}

static void
test_unit_progress_complete(void **state)
{
    fixture *fx = *state;
    char id[RF_ID_MAX];
    rf_msg unit, m, rep;
    int64_t before = rf_now_ms();

    tu_create_job(&fx->env,
                  "{\"title\":\"Wire\",\"input_source\":{\"type\":\"rows\",\"rows\":["
                  "{\"idea_title\":\"Hello wire\",\"script_content\":\"Words on the wire.\","
                  "\"platform_preferences\":\"tiktok\",\"duration_seconds\":2}]},"
                  "\"output\":{\"output_bucket\":\"wire\",\"resolution\":\"720p\"}}",
                  before, id);
    hello(fx, "agent-1");
    lease(fx, "agent-1", &unit);
    assert_int_equal(unit.type, RF_MSG_UNIT);
    assert_string_equal(unit.u.unit.job_id, id);
    assert_string_equal(unit.u.unit.title, "Hello wire");
    assert_string_equal(unit.u.unit.script, "Words on the wire.");
    assert_string_equal(unit.u.unit.rendition, "tiktok");
    assert_int_equal(unit.u.unit.width, 720);
    assert_int_equal(unit.u.unit.height, 1280);
    assert_int_equal(unit.u.unit.duration_ms, 2000);
    assert_int_equal(unit.u.unit.row_number, 1);
    assert_true(unit.u.unit.lease_expires_ms >= (uint64_t)before + 9000);
    assert_memory_equal(unit.u.unit.lease_id, "lse_", 4);

    memset(&m, 0, sizeof(m));
    m.type = RF_MSG_PROGRESS;
    snprintf(m.u.progress.agent_id, sizeof(m.u.progress.agent_id), "agent-1");
    snprintf(m.u.progress.unit_id, sizeof(m.u.progress.unit_id), "%s", unit.u.unit.unit_id);
    snprintf(m.u.progress.lease_id, sizeof(m.u.progress.lease_id), "%s", unit.u.unit.lease_id);
    m.u.progress.frames_done = 30;
    m.u.progress.frames_total = 60;
    snprintf(m.u.progress.stage, sizeof(m.u.progress.stage), "render");
    call(fx, &m, &rep);
    assert_int_equal(rep.type, RF_MSG_ACK);
    assert_true(rep.u.ack.lease_expires_ms >= (uint64_t)before + 9000);
    rf_msg_clear(&rep);

    /* a wrong lease id is fenced off */
    snprintf(m.u.progress.lease_id, sizeof(m.u.progress.lease_id), "lse_NOTTHEONE");
    call(fx, &m, &rep);
    assert_int_equal(rep.type, RF_MSG_REFUSED);
    assert_string_equal(rep.u.refused.code, "stale_lease");
    assert_true(rep.u.refused.reason[0] != '\0');
    rf_msg_clear(&rep);

    tu_write_file(unit.u.unit.output_path, 321);
    memset(&m, 0, sizeof(m));
    m.type = RF_MSG_COMPLETE;
    snprintf(m.u.complete.agent_id, sizeof(m.u.complete.agent_id), "agent-1");
    snprintf(m.u.complete.unit_id, sizeof(m.u.complete.unit_id), "%s", unit.u.unit.unit_id);
    snprintf(m.u.complete.lease_id, sizeof(m.u.complete.lease_id), "%s", unit.u.unit.lease_id);
    snprintf(m.u.complete.output_path, sizeof(m.u.complete.output_path), "%s",
             unit.u.unit.output_path);
    m.u.complete.size_bytes = 321;
    memset(m.u.complete.sha256, 'b', 64);
    m.u.complete.duration_ms = 2000;
    m.u.complete.frames = 60;
    snprintf(m.u.complete.encoder, sizeof(m.u.complete.encoder), "libx264");
    m.u.complete.render_ms = 5;
    call(fx, &m, &rep);
    assert_int_equal(rep.type, RF_MSG_ACK);
    rf_msg_clear(&rep);
    call(fx, &m, &rep); /* the same report twice */
    assert_int_equal(rep.type, RF_MSG_REFUSED);
    assert_string_equal(rep.u.refused.code, "stale_lease");
    rf_msg_clear(&rep);
    rf_msg_clear(&unit);

    lease(fx, "agent-1", &rep);
    assert_int_equal(rep.type, RF_MSG_NO_WORK);
    rf_msg_clear(&rep);
}

static void
test_malformed_messages_refused(void **state)
{
    fixture *fx = *state;
    static const uint8_t garbage[] = {0xc1, 0xff, 0x00, 0x13, 0x37};
    rf_msg rep, m;

    /* More bad messages than contexts: every context must stay in service. */
    for (int i = 0; i < RF_DISPATCH_CONTEXTS * 3; i++) {
        raw(fx, garbage, sizeof(garbage), &rep);
        assert_int_equal(rep.type, RF_MSG_REFUSED);
        assert_string_equal(rep.u.refused.code, "bad_message");
        assert_true(rep.u.refused.reason[0] != '\0');
        rf_msg_clear(&rep);
    }
    raw(fx, "", 0, &rep);
    assert_int_equal(rep.type, RF_MSG_REFUSED);
    assert_string_equal(rep.u.refused.code, "bad_message");
    rf_msg_clear(&rep);

    /* a well-formed message an agent has no business sending */
    memset(&m, 0, sizeof(m));
    m.type = RF_MSG_NO_WORK;
    m.u.no_work.retry_ms = 1;
    call(fx, &m, &rep);
    assert_int_equal(rep.type, RF_MSG_REFUSED);
    assert_string_equal(rep.u.refused.code, "bad_message");
    rf_msg_clear(&rep);

    hello(fx, "agent-after-garbage");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hello_welcome, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_unknown_agent_and_no_work, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unit_progress_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_messages_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
