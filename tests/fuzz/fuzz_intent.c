/* libFuzzer target for reply intent: the shipped rules and model
 * (config/intent.json and the model file it names) over a reply's text:
 * stripping quoted text and signatures, folding, the phrase rules, the
 * model's features and scores, and out-of-office subjects. Input: byte 0
 * picks max_lines; the rest is the text (also tried as a subject).
 * Oracles: a verdict is one of the four intents; a model verdict has a
 * probability in [0, 1], a rule verdict -1; probabilities sum to 1;
 * features are ascending, distinct and in range. */
#include "warmbench/intent.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct wb_intent_rules *fi_rules(void)
{
    static struct wb_intent_rules *r;
    if (!r) {
        char err[256];
        r = wb_intent_load(WB_SHARE_DIR "/intent.json", err, sizeof err);
        if (!r) {
            fprintf(stderr, "fuzz_intent: %s\n", err);
            abort();
        }
    }
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct wb_intent_rules *r = fi_rules();
    char *text = strndup((const char *)data + 1, size - 1);
    char *stripped = wb_intent_strip(text, 1 + data[0] % 40);
    free(stripped);
    struct wb_intent_result res;
    wb_intent_decide(r, text, &res);
    if ((unsigned)res.intent >= WB_INTENT_COUNT)
        abort();
    if (res.by_model ? !(res.confidence >= 0 && res.confidence <= 1) : res.confidence != -1)
        abort();
    (void)wb_intent_ooo_subject(r, text);
    char *folded = wb_intent_text(r, text);
    int m = wb_intent_rules_match(r, folded);
    if (m < -1 || m >= WB_INTENT_COUNT)
        abort();
    const struct wb_intent_model *model = wb_intent_model_of(r);
    if (model) {
        double prob[WB_INTENT_COUNT], sum = 0;
        enum wb_intent best = wb_intent_model_score(model, folded, prob);
        for (int i = 0; i < WB_INTENT_COUNT; i++) {
            if (!(prob[i] >= 0 && prob[i] <= 1))
                abort();
            sum += prob[i];
        }
        if ((unsigned)best >= WB_INTENT_COUNT || fabs(sum - 1) > 1e-6)
            abort();
        const struct wb_intent_feat_params *fp = wb_intent_model_params(model);
        uint32_t *idx;
        float *val;
        size_t n = wb_intent_features(fp, folded, &idx, &val);
        for (size_t i = 0; i < n; i++)
            if (idx[i] >> fp->bits || (i && idx[i] <= idx[i - 1]) || !isfinite(val[i]))
                abort();
        free(idx);
        free(val);
    }
    free(folded);
    free(text);
    return 0;
}
