/* Fuzz target: configuration files (config.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "lockgate/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (path[0] == '\0') snprintf(path, sizeof(path), "/tmp/lockgate-fuzz-%d.conf", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (f == NULL) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    struct lg_config cfg;
    char err[512];
    lg_config_defaults(&cfg);
    if (lg_config_load(&cfg, path, err, sizeof(err)) == 0) lg_config_check(&cfg, err, sizeof(err));
    unlink(path);
    return 0;
}
