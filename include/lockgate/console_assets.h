/* The owner's console pages, built into the binary: the files of console/
 * turned into a C table at build time (scripts/embed-assets.sh), so there is
 * nothing to deploy beside the binary. */
#ifndef LG_CONSOLE_ASSETS_H
#define LG_CONSOLE_ASSETS_H

#include <stddef.h>

struct lg_console_asset {
    const char *name; /* file name under console/, e.g. "app.js" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
};

/* Every file, terminated by an entry with a NULL name. */
extern const struct lg_console_asset lg_console_assets[];

#endif
