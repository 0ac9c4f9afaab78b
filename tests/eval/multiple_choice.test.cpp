#include "eval/tape_lm.hpp"
#include "helpers.hpp"

#include <cmath>

using namespace bitgrad;

namespace mc_test {
// One token a byte: id = byte % 64 (the tiny model's vocabulary), so encode(a + b) = encode(a) + encode(b).
std::vector<int32_t> bytes(const std::string& s) {
    std::vector<int32_t> ids;
    for (char c : s) ids.push_back(int32_t(uint8_t(c) % 64));
    return ids;
}
// The same, except that "ab" is one token (63): encodings of a context and of context + continuation
// can then disagree at the boundary, as SentencePiece's do.
std::vector<int32_t> merging(const std::string& s) {
    std::vector<int32_t> ids;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s.compare(i, 2, "ab") == 0) {
            ids.push_back(63);
            ++i;
        } else {
            ids.push_back(int32_t(uint8_t(s[i]) % 64));
        }
    }
    return ids;
}

// By hand: sum over the continuation's bytes of log softmax, from one forward of the whole sequence
// (its last 65 tokens: max_position_embeddings 64 plus the one that is only predicted).
template <class Model>
double hand_ll(const Model& model, const std::string& context, const std::string& continuation) {
    std::vector<int32_t> all = bytes(context + continuation);
    if (all.size() > 65) all.erase(all.begin(), all.end() - 65);
    const int64_t n = int64_t(all.size()), scored = int64_t(continuation.size());
    NoGrad no_grad;
    Tensor<int32_t> in({1, n - 1});
    for (int64_t t = 0; t + 1 < n; ++t) in[t] = all[std::size_t(t)];
    const auto logits = model.forward(in).value();
    double ll = 0;
    for (int64_t t = n - 1 - scored; t < n - 1; ++t)
        ll -= testing::hand_nll(logits.data() + t * 64, 64, all[std::size_t(t + 1)]);
    return ll;
}

int64_t argmax(const std::vector<double>& v) { return int64_t(std::max_element(v.begin(), v.end()) - v.begin()); }

eval::MultipleChoiceItem ordinary(std::string context, std::vector<std::string> choices, int64_t gold) {
    eval::MultipleChoiceItem it;
    it.context = std::move(context);
    it.choices = std::move(choices);
    it.gold = gold;
    return it;
}

// Items with, by hand, the requests lm-eval makes after _encode_pair: (context without its trailing
// whitespace, that whitespace + " " + choice). The fifth is longer than the tiny model's 64 positions.
struct Case {
    eval::MultipleChoiceItem item;
    std::vector<std::pair<std::string, std::string>> requests;
};
std::vector<Case> cases() {
    const std::string long_context(70, 'q');
    eval::MultipleChoiceItem partial;
    partial.contexts = {"The cat", "The dog"};
    partial.continuation = "sat on the mat.";
    partial.gold = 0;
    return {
        {ordinary("Question: which?\nAnswer:", {"a", "bbbbbbbbbb"}, 1),
         {{"Question: which?\nAnswer:", " a"}, {"Question: which?\nAnswer:", " bbbbbbbbbb"}}},
        {ordinary("The sky is", {"blue", "green", "very very red"}, 0),
         {{"The sky is", " blue"}, {"The sky is", " green"}, {"The sky is", " very very red"}}},
        {ordinary("Fill: \n", {"x y", "z"}, 1), {{"Fill:", " \n x y"}, {"Fill:", " \n z"}}},
        {ordinary(long_context, {"end", "stop"}, 0), {{long_context, " end"}, {long_context, " stop"}}},
        {partial, {{"The cat", " sat on the mat."}, {"The dog", " sat on the mat."}}},
    };
}
std::vector<eval::MultipleChoiceItem> items_of(const std::vector<Case>& cs) {
    std::vector<eval::MultipleChoiceItem> items;
    for (const auto& c : cs) items.push_back(c.item);
    return items;
}

nlohmann::json record(const std::string& text) { return nlohmann::json::parse(text); }
}  // namespace mc_test

TEST_CASE(
    "encode_pair: trailing whitespace joins the continuation - which is encode(context + continuation) past the "
    "context") {
    using namespace mc_test;
    const eval::Tokenizer tok = bytes;
    auto p = eval::encode_pair(tok, "Q: a \n", "b");
    CHECK(p.context == bytes("Q: a"));
    CHECK(p.continuation == bytes(" \nb"));
    // Python's rstrip() also takes Unicode spaces: U+00A0 and U+3000 move too, U+00E9 stays.
    p = eval::encode_pair(tok, "caf\xC3\xA9\xC2\xA0\xE3\x80\x80", "x");
    CHECK(p.context == bytes("caf\xC3\xA9"));
    CHECK(p.continuation == bytes("\xC2\xA0\xE3\x80\x80x"));
    // whole[len(context_enc):]: "xa" encodes as [x, a], "xa" + "bcd" as [x, ab, c, d]; the
    // continuation is whole's tokens past the first 2, [c, d] ("b" went into the merged token).
    const eval::Tokenizer merge = merging;
    p = eval::encode_pair(merge, "xa", "bcd");
    CHECK(p.context == std::vector<int32_t>{'x' % 64, 'a' % 64});
    CHECK(p.continuation == std::vector<int32_t>{'c' % 64, 'd' % 64});
    p = eval::encode_pair(merge, "xa", "b");  // [x, ab]: nothing of its own
    CHECK(p.continuation.empty());
    CHECK_THROWS_WITH_AS(eval::make_request(p, 64, "here"),
                         doctest::Contains("here: the continuation encodes to no tokens"), Error);
    // An empty context: the prefix token, then the continuation encoded alone.
    p = eval::encode_pair(tok, "", " yes", 1);
    CHECK(p.context == std::vector<int32_t>{1});
    CHECK(p.continuation == bytes(" yes"));
    CHECK_THROWS_WITH_AS(eval::encode_pair(tok, "", " yes"), doctest::Contains("empty context"), Error);

    // Truncation from the left: the last max_length + 1 tokens; the continuation must fit.
    const auto r = eval::make_request(eval::encode_pair(tok, std::string(70, 'q') + "123", " abc"), 64, "x");
    CHECK(r.tokens.size() == 65);
    CHECK(r.scored == 4);
    CHECK(r.tokens == bytes(std::string(58, 'q') + "123 abc"));
    CHECK_THROWS_WITH_AS(eval::make_request(eval::encode_pair(tok, "c", std::string(65, 'z')), 64, "f.jsonl:3"),
                         doctest::Contains("f.jsonl:3: the continuation has 65 tokens, more than max_length 64"),
                         Error);
}

TEST_CASE("multiple choice log-likelihoods - acc and acc_norm equal a hand computation") {
    using namespace mc_test;
    Rng rng(11);
    const nn::DenseLlama<double> model(nn::LlamaConfig::preset("tiny"), rng);
    const testing::TapeLM lm(model);
    const auto cs = cases();
    const auto items = items_of(cs);
    // The requests lm-eval makes, as written by hand above.
    for (const auto& c : cs) {
        const auto req = c.item.requests();
        REQUIRE(req.size() == c.requests.size());
        for (std::size_t k = 0; k < req.size(); ++k) {
            const auto p = eval::encode_pair(bytes, req[k].first, req[k].second);
            CHECK(p.context == bytes(c.requests[k].first));
            CHECK(p.continuation == bytes(c.requests[k].second));
        }
    }
    const auto r = eval::evaluate_multiple_choice(items, bytes, eval::make_scorer(lm));
    REQUIRE(r.loglikelihoods.size() == cs.size());
    int64_t correct = 0, correct_norm = 0, disagree = 0;
    for (std::size_t i = 0; i < cs.size(); ++i) {
        std::vector<double> lls, norm;
        for (std::size_t k = 0; k < cs[i].requests.size(); ++k) {
            lls.push_back(hand_ll(model, cs[i].requests[k].first, cs[i].requests[k].second));
            if (!cs[i].item.partial()) norm.push_back(lls.back() / double(cs[i].item.choices[k].size()));  // ASCII
            CHECK(r.loglikelihoods[i][k] == doctest::Approx(lls.back()).epsilon(1e-12));
        }
        CHECK(r.pred[i] == argmax(lls));
        correct += argmax(lls) == cs[i].item.gold;
        if (i < 4) {
            CHECK(r.pred_norm[i] == argmax(norm));
            correct_norm += argmax(norm) == cs[i].item.gold;
            disagree += argmax(norm) != argmax(lls);
        } else {
            CHECK(r.pred_norm[i] == -1);
        }
    }
    CHECK(disagree >= 1);  // "a" is likelier than "bbbbbbbbbb", not per character: acc_norm is tested
    CHECK(r.n == 5);
    CHECK(r.acc == doctest::Approx(double(correct) / 5));
    CHECK(r.acc_stderr == doctest::Approx(std::sqrt(r.acc * (1 - r.acc) / 4)));
    CHECK_FALSE(r.has_acc_norm);  // a partial item: acc only

    const std::vector<eval::MultipleChoiceItem> four(items.begin(), items.begin() + 4);
    const auto r4 = eval::evaluate_multiple_choice(four, bytes, eval::make_scorer(lm));
    REQUIRE(r4.has_acc_norm);
    CHECK(r4.acc_norm == doctest::Approx(double(correct_norm) / 4));
    CHECK(r4.acc_norm_stderr == doctest::Approx(std::sqrt(r4.acc_norm * (1 - r4.acc_norm) / 3)));
}

TEST_CASE("acc_norm divides by characters of the choice - not bytes - and ties go to the first choice") {
    using namespace mc_test;
    // "\xC3\xA9 \xC3\xA9" ("é é"): 3 characters, 5 bytes; "abcd": 4 and 4. Per character -1.1 < -1.05,
    // per byte -0.66 > -1.05: the two readings pick different choices.
    auto a = ordinary("c", {"\xC3\xA9 \xC3\xA9", "abcd"}, 1);
    auto b = ordinary("c", {"x", "y"}, 0);
    const auto r = eval::score_multiple_choice({a, b}, {{-3.3, -4.2}, {-2.0, -2.0}});
    CHECK(r.pred == std::vector<int64_t>{0, 0});
    CHECK(r.pred_norm == std::vector<int64_t>{1, 0});
    CHECK(r.acc == 0.5);
    CHECK(r.acc_norm == 1.0);
    CHECK(r.acc_norm_stderr == 0.0);
    CHECK(r.acc_stderr == doctest::Approx(std::sqrt(0.25 / 1)));
    CHECK(std::isnan(eval::score_multiple_choice({b}, {{-1.0, -2.0}}).acc_stderr));  // n = 1: lm-eval's "N/A"
}

TEST_CASE("scoring that reuses the context's cache equals one request alone and reports progress per block of items") {
    using namespace mc_test;
    Rng rng(12);
    const nn::DenseLlama<double> model(nn::LlamaConfig::preset("tiny"), rng);
    const testing::TapeLM shared_lm(model), alone_lm(model);
    const auto items = items_of(cases());
    std::vector<std::pair<int64_t, int64_t>> seen;
    eval::MultipleChoiceOptions o;
    o.items_per_call = 2;
    const auto shared = eval::evaluate_multiple_choice(items, bytes, eval::make_scorer(shared_lm), o,
                                                       [&](int64_t d, int64_t t) { seen.emplace_back(d, t); });
    CHECK(seen == std::vector<std::pair<int64_t, int64_t>>{{2, 5}, {4, 5}, {5, 5}});
    const auto alone = eval::evaluate_multiple_choice(items, bytes, eval::make_scorer(alone_lm, false));
    // The TapeLM reads the prefix back from the cache: a wrong prefix kept would change the numbers.
    for (std::size_t i = 0; i < items.size(); ++i)
        for (std::size_t k = 0; k < alone.loglikelihoods[i].size(); ++k)
            CHECK(shared.loglikelihoods[i][k] == doctest::Approx(alone.loglikelihoods[i][k]).epsilon(1e-12));
    CHECK(shared.acc == alone.acc);
    CHECK(shared_lm.calls == alone_lm.calls);           // one prefill a request either way,
    CHECK(shared_lm.tokens_run < alone_lm.tokens_run);  // shorter when the context's keys are kept
    // Deterministic: the same call twice gives the same bits.
    const auto again = eval::evaluate_multiple_choice(items, bytes, eval::make_scorer(shared_lm), o);
    CHECK(again.loglikelihoods == shared.loglikelihoods);
}

TEST_CASE("the packed decoder scores as the float FbiLlama does - with and without reusing the context's cache") {
    using namespace mc_test;
    Rng rng(13);
    const nn::FbiLlama<float> model(nn::LlamaConfig::preset("tiny"), rng);
    const infer::PackedLlama packed(model);
    const infer::FloatLlama dense_lm(model);
    const auto items = items_of(cases());
    const auto dense = eval::evaluate_multiple_choice(items, bytes, eval::make_scorer(dense_lm));
    const auto shared = eval::evaluate_multiple_choice(items, bytes, eval::make_scorer(packed));
    const auto alone = eval::evaluate_multiple_choice(items, bytes, eval::make_scorer(packed, false));
    for (std::size_t i = 0; i < items.size(); ++i)
        for (std::size_t k = 0; k < dense.loglikelihoods[i].size(); ++k) {
            // The packed defaults (fp16 alpha and beta, int8 tables, int8 activations): within 0.05%
            // of the float model's sum.
            CHECK(shared.loglikelihoods[i][k] == doctest::Approx(dense.loglikelihoods[i][k]).epsilon(5e-4));
            // The context's keys and values kept from the previous choice's prefill, or recomputed: float
            // rounding apart (measured: up to 1.3e-9).
            CHECK(shared.loglikelihoods[i][k] == doctest::Approx(alone.loglikelihoods[i][k]).epsilon(1e-6));
        }
}

TEST_CASE("converters reproduce lm-eval 0.4.2's contexts - choices and answers from the official layouts") {
    using namespace mc_test;
    SUBCASE("piqa: Question: goal / Answer: - [sol1 sol2] - label in the record or the labels file") {
        const auto r = record(R"({"goal": "How do I boil water?", "sol1": "Put it in a pot on the stove.",
                                  "sol2": "Put it in the freezer.", "label": 1})");
        auto it = eval::mc_item_from_record("piqa", r, "p:1");
        CHECK(it.context == "Question: How do I boil water?\nAnswer:");
        CHECK(it.choices == std::vector<std::string>{"Put it in a pot on the stove.", "Put it in the freezer."});
        CHECK(it.gold == 1);
        CHECK(it.requests()[0].second == " Put it in a pot on the stove.");
        CHECK(eval::mc_item_from_record("piqa", r, "p:1", 0).gold == 0);  // the labels file wins
    }
    SUBCASE("hellaswag: preprocess(activity_label: ctx_a + ctx_b.capitalize()) and preprocessed endings") {
        auto it = eval::mc_item_from_record("hellaswag", record(R"({"ind": 4, "activity_label": "Removing ice from car",
            "ctx_a": "Then, the man writes over the snow covering the window of a car, and a woman wearing winter clothes smiles.",
            "ctx_b": "then", "endings": [", the man adds wax to the windshield and cuts it.",
            ", a person board a ski lift.", ", the man puts on a christmas coat.", ", the man continues removing the snow on his car."],
            "label": 3})"),
                                            "h:1");
        CHECK(it.context ==
              "Removing ice from car: Then, the man writes over the snow covering the window of a car, and a woman "
              "wearing winter clothes smiles. Then");
        CHECK(it.choices[0] == ", the man adds wax to the windshield and cuts it.");
        CHECK(it.gold == 3);
        CHECK(it.id == "4");
        // WikiHow's brackets: " [title]" -> ". ", other [...] dropped (not across a newline), "  " -> " "
        // once, strip first; capitalize() lowers the rest of ctx_b; the Hugging Face label is a string.
        it = eval::mc_item_from_record("hellaswag", record(R"({"activity_label": "Home and Garden",
            "ctx_a": "[header] How to grow tomatoes [title] Pick a sunny spot.", "ctx_b": "water the SOIL daily",
            "endings": ["[step] Keep  it moist. ", " [title] Add compost.", "Use   three spaces [a\nb] [c]"],
            "label": "1"})"),
                                       "h:2");
        CHECK(it.context == "Home and Garden: How to grow tomatoes. Pick a sunny spot. Water the soil daily");
        CHECK(it.choices == std::vector<std::string>{" Keep it moist.", " Add compost.", "Use  three spaces [a\nb] "});
        CHECK(it.gold == 1);
    }
    SUBCASE("winogrande: partial scoring - sentence up to _ + option - the rest stripped") {
        const auto it = eval::mc_item_from_record("winogrande", record(R"({"qID": "3D5G-2",
            "sentence": "Kyle doesn't wear leg warmers to bed, while Logan almost always does. _ is more likely to live in a colder climate. ",
            "option1": "Kyle", "option2": "Logan", "answer": "2"})"),
                                                  "w:1");
        REQUIRE(it.partial());
        CHECK(it.contexts ==
              std::vector<std::string>{"Kyle doesn't wear leg warmers to bed, while Logan almost always does. Kyle",
                                       "Kyle doesn't wear leg warmers to bed, while Logan almost always does. Logan"});
        CHECK(it.continuation == "is more likely to live in a colder climate.");
        CHECK(it.requests()[1].second == " is more likely to live in a colder climate.");
        CHECK(it.gold == 1);
        CHECK(it.id == "3D5G-2");
    }
    SUBCASE("arc: Question: question / Answer: - choices.text - label index of answerKey - both layouts") {
        const std::string stem = "Which is the most likely effect of this increase in rotation?";
        for (const char* task : {"arc_easy", "arc_challenge"}) {
            auto it = eval::mc_item_from_record(
                task,
                record(R"({"id": "Mercury_7175875", "question": {"stem": ")" + stem +
                       R"(", "choices": [{"text": "Planetary density will decrease.", "label": "A"},
                  {"text": "Planetary years will become longer.", "label": "B"}, {"text": "Planetary days will become shorter.", "label": "C"},
                  {"text": "Planetary gravity will become stronger.", "label": "D"}]}, "answerKey": "C"})"),
                "a:1");
            CHECK(it.context == "Question: " + stem + "\nAnswer:");
            CHECK(it.choices.size() == 4);
            CHECK(it.choices[2] == "Planetary days will become shorter.");
            CHECK(it.gold == 2);
            CHECK(it.id == "Mercury_7175875");
            it = eval::mc_item_from_record(
                task, record(R"({"id": "x", "question": "Why?", "choices": {"text": ["a", "b", "c", "d"],
                  "label": ["1", "2", "3", "4"]}, "answerKey": "4"})"),
                "a:2");
            CHECK(it.context == "Question: Why?\nAnswer:");
            CHECK(it.choices == std::vector<std::string>{"a", "b", "c", "d"});
            CHECK(it.gold == 3);
        }
    }
    SUBCASE("openbookqa: question_stem alone - choices.text - index of answerKey.lstrip()") {
        auto it = eval::mc_item_from_record("openbookqa",
                                            record(R"({"id": "7-980", "question": {"stem": "The sun is responsible for",
            "choices": [{"text": "puppies learning new tricks", "label": "A"}, {"text": "children growing up and getting old", "label": "B"},
            {"text": "flowers wilting in a vase", "label": "C"}, {"text": "plants sprouting, blooming and wilting", "label": "D"}]},
            "answerKey": "D"})"),
                                            "o:1");
        CHECK(it.context == "The sun is responsible for");
        CHECK(it.choices[3] == "plants sprouting, blooming and wilting");
        CHECK(it.gold == 3);
        it = eval::mc_item_from_record("openbookqa", record(R"({"id": "8", "question_stem": "Mice eat",
            "choices": {"text": ["cheese", "rocks"], "label": ["A", "B"]}, "answerKey": " A"})"),
                                       "o:2");
        CHECK(it.context == "Mice eat");
        CHECK(it.gold == 0);
    }
}

TEST_CASE("converted files round-trip through the item format - PIQA takes its labels file") {
    using namespace mc_test;
    testing::TempDir dir("mc-convert");
    testing::write_bytes(dir / "valid.jsonl",
                         "{\"goal\": \"g1\", \"sol1\": \"a\", \"sol2\": \"b\"}\n\n{\"goal\": \"g2\", \"sol1\": \"c\", "
                         "\"sol2\": \"d\"}\n");
    testing::write_bytes(dir / "valid-labels.lst", "1\n0\n");
    const auto items =
        eval::convert_mc_task("piqa", (dir / "valid.jsonl").string(), (dir / "valid-labels.lst").string());
    REQUIRE(items.size() == 2);
    CHECK(items[0].gold == 1);
    CHECK(items[1].gold == 0);
    CHECK(items[1].source == (dir / "valid.jsonl").string() + ":3");
    eval::write_mc_items((dir / "piqa.jsonl").string(), items);
    CHECK(testing::read_bytes(dir / "piqa.jsonl") ==
          "{\"context\":\"Question: g1\\nAnswer:\",\"choices\":[\"a\",\"b\"],\"gold\":1}\n"
          "{\"context\":\"Question: g2\\nAnswer:\",\"choices\":[\"c\",\"d\"],\"gold\":0}\n");
    const auto back = eval::read_mc_items((dir / "piqa.jsonl").string());
    REQUIRE(back.size() == 2);
    CHECK(back[1].context == items[1].context);
    CHECK(back[1].choices == items[1].choices);

    testing::write_bytes(dir / "w.jsonl",
                         "{\"sentence\": \"A _ b.\", \"option1\": \"x\", \"option2\": \"y\", \"answer\": \"1\"}\n");
    const auto w = eval::convert_mc_task("winogrande", (dir / "w.jsonl").string());
    eval::write_mc_items((dir / "wi.jsonl").string(), w);
    const auto wb = eval::read_mc_items((dir / "wi.jsonl").string());
    CHECK(wb[0].contexts == std::vector<std::string>{"A x", "A y"});
    CHECK(wb[0].continuation == "b.");

    testing::write_bytes(dir / "three.lst", "1\n0\n1\n");
    CHECK_THROWS_WITH_AS(eval::convert_mc_task("piqa", (dir / "valid.jsonl").string(), (dir / "three.lst").string()),
                         doctest::Contains("three.lst: 3 labels for the 2 records"), Error);
    testing::write_bytes(dir / "bad.lst", "1\n2\n");
    CHECK_THROWS_WITH_AS(eval::convert_mc_task("piqa", (dir / "valid.jsonl").string(), (dir / "bad.lst").string()),
                         doctest::Contains("bad.lst:2: label \"2\", expected 0 or 1"), Error);
    CHECK_THROWS_WITH_AS(eval::convert_mc_task("piqa", (dir / "valid.jsonl").string()),
                         doctest::Contains("valid.jsonl:1: missing field \"label\""), Error);
}

TEST_CASE("malformed items and records are refused naming the file - the line and the field") {
    using namespace mc_test;
    testing::TempDir dir("mc-bad");
    const auto refused = [&](const std::string& line2, const std::string& message) {
        testing::write_bytes(dir / "i.jsonl",
                             "{\"context\": \"c\", \"choices\": [\"a\", \"b\"], \"gold\": 0}\n" + line2 + "\n");
        const std::string expected = (dir / "i.jsonl").string() + ":2: " + message;
        CHECK_THROWS_WITH_AS(eval::read_mc_items((dir / "i.jsonl").string()), doctest::Contains(expected.c_str()),
                             Error);
    };
    refused("[1, 2]", "expected a JSON object, got an array of 2 elements");
    refused("{\"context\": \"c\", \"choices\": [\"a\", \"b\"]", "not valid JSON");
    refused("{\"context\": \"c\", \"choices\": [\"a\", \"b\"]}", "missing field \"gold\"");
    refused("{\"context\": \"c\", \"choices\": [\"a\", \"b\"], \"gold\": 2}",
            "field \"gold\" is 2, expected an index in [0, 2) into \"choices\"");
    refused("{\"context\": \"c\", \"choices\": [\"a\"], \"gold\": 0}",
            "field \"choices\" has 1 entries, expected at least 2");
    refused("{\"context\": \"c\", \"choices\": [\"a\", 3], \"gold\": 0}",
            "field \"choices\"[1] must be a string, got 3");
    refused("{\"context\": 5, \"choices\": [\"a\", \"b\"], \"gold\": 0}", "field \"context\" must be a string");
    refused("{\"contexts\": [\"a\", \"b\"], \"gold\": 0}", "missing field \"continuation\"");
    refused("{\"contexts\": [\"a\", \"b\"], \"context\": \"c\", \"continuation\": \"x\", \"gold\": 0}",
            "\"contexts\" (partial scoring) cannot go with \"context\"");

    CHECK_THROWS_WITH_AS(eval::mc_item_from_record("mmlu", record("{}"), "m:1"),
                         doctest::Contains("unknown task 'mmlu', expected one of: boolq, piqa, hellaswag, winogrande, "
                                           "arc_easy, arc_challenge, openbookqa"),
                         Error);
    CHECK_THROWS_WITH_AS(
        eval::mc_item_from_record(
            "winogrande", record(R"({"sentence": "no blank", "option1": "a", "option2": "b", "answer": "1"})"), "w:4"),
        doctest::Contains("w:4: field \"sentence\" has no \"_\""), Error);
    CHECK_THROWS_WITH_AS(
        eval::mc_item_from_record(
            "winogrande", record(R"({"sentence": "a _", "option1": "a", "option2": "b", "answer": ""})"), "w:5"),
        doctest::Contains("w:5: field \"answer\" is \"\", expected \"1\" or \"2\""), Error);
    CHECK_THROWS_WITH_AS(
        eval::mc_item_from_record("arc_easy", record(R"({"question": "q", "choices": {"text": ["a", "b"],
                                                                     "label": ["A", "B"]}, "answerKey": "E"})"),
                                  "a:9"),
        doctest::Contains("a:9: field \"answerKey\" is \"E\", not one of the choice labels [A, B]"), Error);
    CHECK_THROWS_WITH_AS(
        eval::mc_item_from_record("arc_challenge", record(R"({"question": {"stem": "q", "choices": [{"text": "a"}]},
                                                                     "answerKey": "A"})"),
                                  "a:3"),
        doctest::Contains("a:3: question.choices[0]: missing field \"label\""), Error);
    CHECK_THROWS_WITH_AS(
        eval::mc_item_from_record("hellaswag", record(R"({"activity_label": "x", "ctx_a": "a", "ctx_b": "b",
                                                                     "endings": ["1", "2"], "label": ""})"),
                                  "h:7"),
        doctest::Contains("h:7: field \"label\" must be an integer or a string of digits"), Error);
    CHECK_THROWS_WITH_AS(
        eval::mc_item_from_record("hellaswag", record(R"({"activity_label": "x", "ctx_a": "a", "ctx_b": "b",
                                                                     "endings": ["1", "2"], "label": 4})"),
                                  "h:8"),
        doctest::Contains("h:8: field \"label\" is 4, expected an index in [0, 2)"), Error);
    CHECK_THROWS_WITH_AS(eval::mc_item_from_record("piqa", record(R"({"goal": "g", "sol1": "a"})"), "p:6"),
                         doctest::Contains("p:6: missing field \"sol2\""), Error);
    CHECK_THROWS_WITH_AS(eval::convert_mc_task("boolq", "/nonexistent/dev.jsonl", "labels.lst"),
                         doctest::Contains("a labels file is for piqa only"), Error);

    // Evaluation: a tokenizer of another vocabulary, an empty context without a prefix token.
    Rng rng(1);
    const nn::DenseLlama<double> model(nn::LlamaConfig::preset("tiny"), rng);
    const testing::TapeLM lm(model);
    auto item = ordinary("ctx", {"a", "b"}, 0);
    item.source = "t.jsonl:4";
    const eval::Tokenizer wide = [](const std::string& s) { return std::vector<int32_t>(s.size(), 64); };
    CHECK_THROWS_WITH_AS(eval::evaluate_multiple_choice({item}, wide, eval::make_scorer(lm)),
                         doctest::Contains("t.jsonl:4 choice 0: token id 64 is outside the model's vocabulary of 64"),
                         Error);
    auto empty = ordinary("", {"a", "b"}, 0);
    CHECK_THROWS_WITH_AS(eval::evaluate_multiple_choice({empty}, bytes, eval::make_scorer(lm)),
                         doctest::Contains("empty context"), Error);
    eval::MultipleChoiceOptions o;
    o.prefix_token = 1;
    const auto r = eval::evaluate_multiple_choice({empty}, bytes, eval::make_scorer(lm), o);
    NoGrad no_grad;
    Tensor<int32_t> in({1, 2});
    in[0] = 1;
    in[1] = ' ';
    const auto logits = model.forward(in).value();  // [1, 2, 64]: log p(' ' | BOS) + log p('a' | BOS ' ')
    double hand = 0;
    for (int64_t t = 0; t < 2; ++t) hand -= testing::hand_nll(logits.data() + t * 64, 64, t == 0 ? ' ' : 'a' % 64);
    CHECK(r.loglikelihoods[0][0] == doctest::Approx(hand).epsilon(1e-12));
}
