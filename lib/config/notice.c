/* The Article 14 notice: loading its two templates. */
#include "warmbench/notice.h"
#include "warmbench/readfile.h"
#include "warmbench/util.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Built-in defaults: keep in step with config/templates/privacy-notice.*. */
static const char default_text[] =
    "--\n"
    "Why you are getting this email: {{sender.name|our recruiting team}} found your\n"
    "professional profile (source: {{source|public professional profiles}}) and keeps\n"
    "your name, contact details and work history ({{company|your current role}}) to\n"
    "tell you about roles that may suit you. We do this under legitimate interest\n"
    "(GDPR Art. 6(1)(f)); we never sell your data. We keep it for\n"
    "{{retention|as long as we may recruit you, until you object or ask us to erase it}}.\n"
    "You may ask us at {{sender.email}} for a copy of what we hold, to correct it or\n"
    "to erase it, and you may complain to a data protection supervisory authority.\n"
    "To object and hear nothing more from us: {{unsubscribe_url}}\n";
static const char default_html[] =
    "<hr><p style=\"font-size:12px;color:#666\">Why you are getting this email:\n"
    "{{sender.name|our recruiting team}} found your professional profile (source:\n"
    "{{source|public professional profiles}}) and keeps your name, contact details\n"
    "and work history ({{company|your current role}}) to tell you about roles that\n"
    "may suit you. We do this under legitimate interest (GDPR Art. 6(1)(f)); we\n"
    "never sell your data. We keep it for\n"
    "{{retention|as long as we may recruit you, until you object or ask us to erase it}}.\n"
    "You may ask us at <a href=\"mailto:{{sender.email}}\">{{sender.email}}</a> for a\n"
    "copy of what we hold, to correct it or to erase it, and you may complain to a\n"
    "data protection supervisory authority.\n"
    "<a href=\"{{unsubscribe_url}}\">Object and hear nothing more from us</a>.</p>\n";

static bool ntc_field_known(const char *name, void *ud)
{
    (void)ud;
    /* The notice also names the source and the retention (render.c). */
    static const char *const plain[] = {"email", "first_name", "last_name", "title",
                                        "company", "location", "sender.name",
                                        "sender.email", "unsubscribe_url", "source",
                                        "retention", "retention_days"};
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++)
        if (!strcmp(name, plain[i]))
            return true;
    return !strncmp(name, "attrs.", 6) && name[6] != '\0';
}

/* templates_dir/base.ext parsed; NULL when the file is absent (*found
 * false) or has errors (reported). */
static struct wb_template *ntc_load_file(const char *dir, struct wb_jv *jv, const char *base,
                                     const char *ext, bool *found)
{
    char *name = wb_xasprintf("%s%s", base, ext);
    char *path = wb_path_join(dir, name);
    free(name);
    char *text;
    size_t len;
    struct wb_template *t = NULL;
    int e = wb_read_file(path, &text, &len);
    *found = e != ENOENT;
    if (e && e != ENOENT) {
        wb_jv_err_val(jv, "/privacy_notice", "cannot read privacy notice \"%s\": %s", path,
                      strerror(e));
    } else if (!e) {
        t = wb_template_parse(text, len, path, 1, 1, ntc_field_known, NULL, jv->diags);
        free(text);
    }
    free(path);
    return t;
}

static struct wb_template *ntc_builtin(const char *src, struct wb_jv *jv)
{
    return wb_template_parse(src, strlen(src), "(built-in privacy notice)", 1, 1, ntc_field_known,
                             NULL, jv->diags);
}

void wb_notice_load(struct wb_notice *n, const char *templates_dir, struct wb_jv *jv,
                    json_t *root)
{
    const char *base = "privacy-notice";
    bool named = wb_jv_string(jv, root, "", "privacy_notice", false, &base);
    if (named && (!base[0] || base[0] == '/' || strstr(base, "..") || strchr(base, '/'))) {
        wb_jv_err_val(jv, "/privacy_notice",
                      "\"privacy_notice\" must be a file name inside templates_dir (without "
                      ".txt or .html)");
        return;
    }
    bool has_text = false, has_html = false;
    if (templates_dir) {
        n->text = ntc_load_file(templates_dir, jv, base, ".txt", &has_text);
        n->html = ntc_load_file(templates_dir, jv, base, ".html", &has_html);
    }
    if (named && !has_text && !has_html)
        wb_jv_err_val(jv, "/privacy_notice",
                      "privacy notice \"%s\": neither %s.txt nor %s.html is in templates_dir",
                      base, base, base);
    if (!has_text)
        n->text = ntc_builtin(default_text, jv);
    if (!has_html)
        n->html = ntc_builtin(default_html, jv);
}

void wb_notice_free(struct wb_notice *n)
{
    wb_template_free(n->text);
    wb_template_free(n->html);
    n->text = n->html = NULL;
}
