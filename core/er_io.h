/* Reading whole small inputs (config files, tokenizer files, a request on
 * stdin) with a size cap, for every module and command-line tool. */
#ifndef ER_IO_H
#define ER_IO_H

#include <stddef.h>
#include <stdio.h>

#include "er_error.h"

/* Reads the rest of stream f into a NUL-terminated heap buffer (*out, freed
 * by the caller; *len excludes the NUL).  `what` names the input in error
 * messages.  ER_ERR_CAPACITY when it holds more than max bytes, ER_ERR_IO on
 * a read error, ER_ERR_NOMEM.  On failure *out is NULL. */
er_status er_read_stream(FILE *f, const char *what, size_t max, char **out, size_t *len,
                         er_err *err);

/* er_read_stream on the file at path.  ER_ERR_NOT_FOUND if it does not exist,
 * ER_ERR_IO if it cannot be opened. */
er_status er_read_file(const char *path, size_t max, char **out, size_t *len, er_err *err);

#endif
