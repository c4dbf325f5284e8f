# Live progress (issue 6): unit tests of the WebSocket hub, webhook signing,
# SSRF guard and ETA; the test server and the Python integration tests that
# drive it with real WebSocket clients and a local webhook receiver.
if(TARGET rf_coord_core)
    rf_add_test(NAME live_ws_hub SOURCES test_ws_hub.c LIBS rf_coord_core TIMEOUT 60)
    rf_add_test(NAME live_webhooks_sign SOURCES test_webhooks_sign.c LIBS rf_coord_core TIMEOUT 60)
    rf_add_test(NAME live_webhooks_store SOURCES test_webhooks_store.c LIBS rf_coord_core TIMEOUT 60)
    rf_add_test(NAME live_ssrf SOURCES test_ssrf.c LIBS rf_coord_core TIMEOUT 60)
    rf_add_test(NAME live_eta SOURCES test_eta.c LIBS rf_coord_core m TIMEOUT 60)

    # Not installed: a civetweb server with the feed, the webhook workers and
    # a control API for the Python tests.
    add_executable(live_testd live_testd.c)
    target_link_libraries(live_testd PRIVATE rf_coord_core civetweb::civetweb)

    rf_add_py_test(NAME it_live_ws SCRIPT ../integration/test_live_ws.py TIMEOUT 120)
    rf_add_py_test(NAME it_live_job SCRIPT ../integration/test_live_job.py TIMEOUT 120)
    rf_add_py_test(NAME it_live_webhooks SCRIPT ../integration/test_live_webhooks.py TIMEOUT 120)
    set_tests_properties(it_live_ws it_live_webhooks it_live_job PROPERTIES RUN_SERIAL TRUE)
endif()
