/*
 * replay.c - run a fuzz target over corpus files without libFuzzer.
 *
 * Usage: replay_<target> [DIR|FILE]...
 * Every regular file (names starting with '.' skipped) of each DIR, and each
 * FILE, is read into a buffer of exactly its size and passed to
 * LLVMFuzzerTestOneInput, so a sanitizer build catches a one-byte overread.
 * Without arguments the target's corpus under $srcdir/tests/fuzz/corpus/
 * is used (WR_FUZZ_CORPUS names it at compile time); that is how `make
 * check` runs it. An empty corpus is fine (the empty input is always run);
 * a missing one makes the test SKIP (exit 77) rather than pass silently.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#ifndef WR_FUZZ_CORPUS
#define WR_FUZZ_CORPUS "."
#endif

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    uint8_t *buf;

    if (!f || fstat(fileno(f), &st) < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    buf = malloc(size ? size : 1);
    if (!buf || fread(buf, 1, size, f) != size) {
        fprintf(stderr, "replay: %s: read failed\n", path);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, size);
    free(buf);
    return 0;
}

static int skip_dot(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* Returns the number of inputs run, -1 on error, -2 when `path` is missing. */
static int run_path(const char *path)
{
    struct stat st;
    struct dirent **names;
    int count = 0;

    if (stat(path, &st) < 0)
        return errno == ENOENT ? -2 : -1;
    if (!S_ISDIR(st.st_mode))
        return run_file(path) < 0 ? -1 : 1;

    int n = scandir(path, &names, skip_dot, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char file[4096];
        snprintf(file, sizeof file, "%s/%s", path, names[i]->d_name);
        if (stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(file) < 0)
                count = -1;
            else if (count >= 0)
                count++;
        }
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv)
{
    char def[4096];
    const char *defaults[1];
    const char *const *paths = (const char *const *)argv + 1;
    int npaths = argc - 1;
    int status = 0;

    if (npaths == 0) {
        const char *srcdir = getenv("srcdir");
        snprintf(def, sizeof def, "%s/tests/fuzz/corpus/%s", srcdir ? srcdir : ".", WR_FUZZ_CORPUS);
        defaults[0] = def;
        paths = defaults;
        npaths = 1;
    }

    /* libFuzzer always tries the empty input; so do we. */
    LLVMFuzzerTestOneInput((const uint8_t *)"", 0);

    for (int i = 0; i < npaths; i++) {
        int n = run_path(paths[i]);
        if (n == -2) {
            printf("replay: %s: no such corpus, skipped\n", paths[i]);
            if (status == 0)
                status = 77;
        } else if (n < 0) {
            status = 1;
        } else {
            printf("replay: %s: %d inputs\n", paths[i], n);
        }
    }
    return status;
}
