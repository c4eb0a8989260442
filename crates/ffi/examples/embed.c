/*
 * Embedding confab from C: start a server, create a room, mint a token, let a real WebRTC client
 * (confab-testbed) join with it, see the join through the event callback, read stats, stop.
 * Exits 0 only if every step happened.
 *
 *   cc -I crates/ffi/include embed.c -L target/debug -lconfab_ffi -lpthread -ldl -lm
 *   CONFAB_TESTBED=target/debug/confab-testbed ./a.out      (or: ./a.out path/to/confab-testbed)
 *
 * crates/ffi/run-examples.sh builds and runs it.
 */
#define _POSIX_C_SOURCE 200809L
#include "confab.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* What the callback saw; it runs on a confab thread, so guarded by a mutex. */
struct seen {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int joins, leaves;
};

static void on_event(const char *json, void *user) {
    struct seen *s = user;
    printf("embed.c: event %s\n", json);
    pthread_mutex_lock(&s->lock);
    if (strstr(json, "\"type\":\"participant_join\"") && strstr(json, "\"username\":\"alice\"")) s->joins++;
    if (strstr(json, "\"type\":\"participant_leave\"")) s->leaves++;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* Waits up to `seconds` for *counter > 0. */
static int wait_for(struct seen *s, int *counter, int seconds) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += seconds;
    pthread_mutex_lock(&s->lock);
    while (*counter == 0) {
        if (pthread_cond_timedwait(&s->changed, &s->lock, &deadline) == ETIMEDOUT) break;
    }
    int ok = *counter > 0;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

#define CHECK(call)                                                                        \
    do {                                                                                   \
        ConfabStatus st_ = (call);                                                         \
        if (st_ != CONFAB_STATUS_OK) {                                                     \
            fprintf(stderr, "embed.c: %s failed (%d): %s\n", #call, (int)st_, confab_last_error()); \
            goto fail;                                                                     \
        }                                                                                  \
    } while (0)

#define FAIL(...)                                 \
    do {                                          \
        fprintf(stderr, "embed.c: " __VA_ARGS__); \
        goto fail;                                \
    } while (0)

int main(int argc, char **argv) {
    const char *testbed = argc > 1 ? argv[1] : getenv("CONFAB_TESTBED");
    if (!testbed) {
        fprintf(stderr, "usage: %s PATH/TO/confab-testbed (or set CONFAB_TESTBED)\n", argv[0]);
        return 2;
    }
    char dir[] = "/tmp/confab-embed-c-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char config[512], voice_url[128];
    snprintf(config, sizeof config, "{\"database_url\": \"sqlite:%s/embed.db\"}", dir);

    struct seen seen = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    ConfabServer *srv = NULL;
    char *room = NULL, *token = NULL, *addr = NULL, *stats = NULL, *people = NULL;
    pid_t child = -1;
    int ok = 0;

    CHECK(confab_server_start(config, &srv));
    CHECK(confab_set_event_callback(srv, on_event, &seen));
    CHECK(confab_room_create(srv, "embed-c", "hybrid", &room));
    CHECK(confab_token_mint(srv, "alice", room, &token));
    CHECK(confab_server_http_addr(srv, &addr));
    snprintf(voice_url, sizeof voice_url, "ws://%s/voice", addr);
    printf("embed.c: room %s, voice gateway %s\n", room, voice_url);

    char *child_argv[] = {(char *)testbed, "join", "--voice-url", voice_url, "--token", token,
                          "--tone", "440", "--seconds", "3", NULL};
    int err = posix_spawn(&child, testbed, NULL, NULL, child_argv, environ);
    if (err != 0) {
        child = -1;
        FAIL("spawning %s: %s\n", testbed, strerror(err));
    }
    if (!wait_for(&seen, &seen.joins, 20)) FAIL("no participant_join event within 20 s\n");

    /* The join is announced at identify; the media peer appears after the offer and connects
     * (ICE, DTLS) a moment later: poll for it. */
    for (int i = 0; i < 100; i++) {
        confab_string_free(stats);
        stats = NULL;
        CHECK(confab_stats_json(srv, &stats));
        if (strstr(stats, "\"peers\":[{") && strstr(stats, "\"connected\":true")) break;
        sleep_ms(100);
    }
    if (!strstr(stats, "\"connected\":true")) FAIL("stats show no connected peer: %s\n", stats);
    printf("embed.c: stats %s\n", stats);
    CHECK(confab_room_participants(srv, room, &people));
    if (!strstr(people, "\"username\":\"alice\"")) FAIL("participants lack alice: %s\n", people);

    /* The client stays 3 s, leaves, and exits 0. */
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 300 && (done = waitpid(child, &status, WNOHANG)) == 0; i++) sleep_ms(100);
    if (done != child) FAIL("confab-testbed did not exit within 30 s\n");
    child = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) FAIL("confab-testbed failed (status %d)\n", status);
    if (!wait_for(&seen, &seen.leaves, 10)) FAIL("no participant_leave event\n");

    CHECK(confab_server_stop(srv));
    if (confab_server_stop(srv) != CONFAB_STATUS_ALREADY_STOPPED) FAIL("a second stop was not ALREADY_STOPPED\n");
    ok = 1;
fail:
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    confab_string_free(people);
    confab_string_free(stats);
    confab_string_free(addr);
    confab_string_free(token);
    confab_string_free(room);
    confab_server_free(srv);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "embed.c: could not remove %s\n", dir);
    printf("embed.c: %s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
