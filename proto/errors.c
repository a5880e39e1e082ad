/* Error statuses and bodies in the three dialects (see pr_api in proto.h). */
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int pr_status_of(er_status st) {
    switch (st) {
    case ER_OK: return 200;
    case ER_ERR_INVALID_ARG: return 422;
    case ER_ERR_FORMAT: return 400;
    case ER_ERR_CAPACITY: return 413;
    case ER_ERR_NOT_FOUND: return 404;
    case ER_ERR_UNSUPPORTED: return 422;
    default: return 500;
    }
}

const char *pr_error_type(int status) {
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 405: return "method_not_allowed";
    case 408: return "timeout_error";
    case 413: return "request_too_large";
    case 415: return "unsupported_media_type";
    case 422: return "validation_error";
    case 429: return "rate_limit_error";
    case 499: return "client_closed_request";
    case 503: return "overloaded_error";
    case 504: return "timeout_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

static int openai_status(int status, pr_fault f) {
    if (f == PR_FAULT_MODEL) return 404;
    if (f != PR_FAULT_NONE || status == 422) return 400; /* OpenAI: every invalid request */
    return status;
}

static int tei_status(int status, pr_fault f) {
    switch (f) {
    case PR_FAULT_EMPTY:
    case PR_FAULT_SYNTAX: return 400; /* TEI's "Empty"; axum's JSON syntax rejection */
    case PR_FAULT_TYPE:               /* axum's JSON data rejection */
    case PR_FAULT_RANGE:
    case PR_FAULT_LIMIT:
    case PR_FAULT_TOO_LONG:
    case PR_FAULT_TOKENIZER: return 422;
    case PR_FAULT_HEAD: return 424;
    default: break;
    }
    if (status >= 500 && status != 503) return 424; /* TEI's Backend */
    return status;
}

int pr_error_status(pr_api api, int status, pr_fault f) {
    if (api == PR_API_OPENAI) return openai_status(status, f);
    if (api == PR_API_TEI) return tei_status(status, f);
    return status;
}

const char *pr_tei_error_type(int status, pr_fault f) {
    if (f == PR_FAULT_EMPTY) return "Empty";
    if (f == PR_FAULT_TOKENIZER) return "Tokenizer";
    if (f == PR_FAULT_HEAD || status == 424 || (status >= 500 && status != 503)) return "Backend";
    if (status == 429) return "Overloaded";
    if (status == 503) return "Unhealthy";
    return "Validation";
}

/* OpenAI's `param`: the first `name` the message quotes, without an index
 * or a member ("`input[2]` is empty" -> "input"). */
static json_t *param_of(const char *msg, const char *param) {
    if (param) return json_string(param);
    const char *a = msg ? strchr(msg, '`') : NULL;
    if (!a) return json_null();
    size_t n = strcspn(a + 1, "`[.");
    const char *end = a + 1 + n;
    if (n == 0 || !strchr(end, '`')) return json_null();
    return json_stringn(a + 1, n);
}

static json_t *openai_error(int status, pr_fault f, const char *msg, const char *param) {
    const char *type = status == 429 ? "rate_limit_exceeded"
                       : status >= 500 ? "server_error" : "invalid_request_error";
    const char *code = f == PR_FAULT_MODEL ? "model_not_found"
                       : status == 401     ? "invalid_api_key"
                       : status == 429     ? "rate_limit_exceeded" : NULL;
    return json_pack("{s:{s:s,s:s,s:o,s:o}}", "error", "message", msg, "type", type, "param",
                     param_of(msg, param), "code", code ? json_string(code) : json_null());
}

static json_t *error_json(pr_api api, int status, pr_fault f, const char *msg, const char *param) {
    switch (api) {
    case PR_API_OPENAI: return openai_error(status, f, msg, param);
    case PR_API_TEI:
        return json_pack("{s:s,s:s}", "error", msg, "error_type", pr_tei_error_type(status, f));
    default: return json_pack("{s:{s:s,s:s}}", "error", "type", pr_error_type(status), "message", msg);
    }
}

char *pr_error_body(pr_api api, int status, pr_fault f, const char *msg, const char *param,
                    size_t *len) {
    json_t *j = error_json(api, status, f, msg && *msg ? msg : "error", param);
    /* msg not UTF-8 (an echoed byte?): keep the reply valid JSON */
    if (!j) j = error_json(api, status, f, "error (message not UTF-8)", NULL);
    return j ? pr_dump(j, len) : NULL;
}
