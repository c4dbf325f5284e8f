# Live progress (issue 6): WebSocket feed, webhook delivery, SSRF guard and
# ETA estimation, as one static library the coordinator links.
add_library(rf_live STATIC
    eta.c
    ssrf.c
    webhooks.c
    ws.c
)
target_include_directories(rf_live PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(rf_live
    PUBLIC rf_common PkgConfig::JANSSON PkgConfig::CURL Threads::Threads
    PRIVATE civetweb::civetweb PkgConfig::CRYPTO m)
