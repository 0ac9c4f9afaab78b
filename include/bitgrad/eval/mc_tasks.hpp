#pragma once
// The official files of the zero-shot tasks FBI-LLM reports (PIQA, HellaSwag, Winogrande,
// ARC-Easy / -Challenge, BoolQ, OpenBookQA) -> multiple-choice items (eval/multiple_choice.hpp),
// with the strings lm-evaluation-harness 0.4.2's task YAMLs and utils build: doc_to_text,
// doc_to_choice, doc_to_target (each converter below names its source).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "bitgrad/core/error.hpp"
#include "bitgrad/eval/multiple_choice.hpp"
#include "bitgrad/eval/py_string.hpp"

namespace bitgrad::eval {

namespace detail {
// lm_eval/tasks/hellaswag/utils.py preprocess(): strip, " [title]" -> ". ", re.sub("\\[.*?\\]", ""),
// "  " -> " " (one pass). The regex's '.' matches anything but '\n'.
inline std::string hellaswag_preprocess(const std::string& text) {
    const std::string t = py_replace(py_strip(text), " [title]", ". ");
    std::string out;
    for (std::size_t i = 0; i < t.size();) {
        if (t[i] == '[') {
            std::size_t j = i + 1;
            while (j < t.size() && t[j] != ']' && t[j] != '\n') ++j;
            if (j < t.size() && t[j] == ']') {
                i = j + 1;
                continue;
            }
        }
        out += t[i++];
    }
    return py_replace(out, "  ", " ");
}
}  // namespace detail

// The official dataset files -> items, as lm-eval 0.4.2's task configs build requests (zero-shot:
// the context is doc_to_text alone, or for multiple_inputs the choice alone).
// The tasks are a closed set: kMcTasks is the one place their names live, and mc_item_from_record
// switches over McTaskId with no default, so -Wswitch (in -Wall) flags a task without a converter.
enum class McTaskId { boolq, piqa, hellaswag, winogrande, arc_easy, arc_challenge, openbookqa };
struct McTask {
    McTaskId id;
    const char* name;
    bool acc_norm;      // lm-eval's YAML lists acc_norm
    const char* split;  // the split lm-eval scores
};
inline constexpr std::array<McTask, 7> kMcTasks = {{
    {McTaskId::boolq, "boolq", false, "validation"},
    {McTaskId::piqa, "piqa", true, "validation"},
    {McTaskId::hellaswag, "hellaswag", true, "validation"},
    {McTaskId::winogrande, "winogrande", false, "validation (winogrande_xl)"},
    {McTaskId::arc_easy, "arc_easy", true, "test"},
    {McTaskId::arc_challenge, "arc_challenge", true, "test"},
    {McTaskId::openbookqa, "openbookqa", true, "test (main)"},
}};
inline const auto& mc_tasks() { return kMcTasks; }
// "boolq, piqa, ...": for messages and option help.
inline std::string mc_task_names() {
    std::string known;
    for (const auto& t : kMcTasks) known += std::string(known.empty() ? "" : ", ") + t.name;
    return known;
}
inline const McTask& mc_task(const std::string& name) {
    for (const auto& t : kMcTasks)
        if (name == t.name) return t;
    BITGRAD_CHECK(false, "multiple choice: unknown task '" << name << "', expected one of: " << mc_task_names());
    return kMcTasks[0];
}

namespace detail {
// choices.label.index(key), as the ARC and OpenBookQA YAMLs' doc_to_target.
inline int64_t label_index(const std::vector<std::string>& labels, const std::string& key, const char* field,
                           const std::string& where) {
    const auto it = std::find(labels.begin(), labels.end(), key);
    if (it == labels.end()) {
        std::string all;
        for (const auto& l : labels) all += (all.empty() ? "" : ", ") + l;
        BITGRAD_CHECK(false, where << ": field \"" << field << "\" is \"" << key << "\", not one of the choice labels ["
                                   << all << "]");
    }
    return int64_t(it - labels.begin());
}
// ARC and OpenBookQA choices: the AI2 layout [{text, label}, ...] or the Hugging Face {text: [], label: []}.
inline void read_choices(const nlohmann::json& choices, const std::string& field, const std::string& where,
                         std::vector<std::string>& text, std::vector<std::string>& labels) {
    if (choices.is_array()) {
        for (std::size_t i = 0; i < choices.size(); ++i) {
            const std::string w = where + ": " + field + "[" + std::to_string(i) + "]";
            text.push_back(json_field<std::string>(choices[i], "text", w));
            labels.push_back(json_field<std::string>(choices[i], "label", w));
        }
    } else {
        BITGRAD_CHECK(choices.is_object(), where << ": field \"" << field
                                                 << "\" must be an array of {text, label} or an object "
                                                    "{text: [...], label: [...]}, got "
                                                 << bitgrad::detail::json_excerpt(choices));
        text = string_list(choices, "text", where + ": " + field);
        labels = string_list(choices, "label", where + ": " + field);
        BITGRAD_CHECK(text.size() == labels.size(), where << ": field \"" << field << "\" has " << text.size()
                                                          << " texts and " << labels.size() << " labels");
    }
}
inline const nlohmann::json& field_value(const nlohmann::json& j, const char* key, const std::string& where) {
    BITGRAD_CHECK(j.is_object(), where << ": expected a JSON object, got " << bitgrad::detail::json_excerpt(j));
    BITGRAD_CHECK(j.contains(key), where << ": missing field \"" << key << "\"");
    return j[key];
}
}  // namespace detail

namespace detail {
// BoolQ. lm-eval 0.4.2 (lm_eval/tasks/super_glue/boolq/default.yaml at tag v0.4.2): dataset_path
// super_glue, doc_to_text "{{passage}}\nQuestion: {{question}}?\nAnswer:", doc_to_choice ["no", "yes"],
// doc_to_target label. Its documents come from datasets' super_glue.py, which reads SuperGLUE's
// BoolQ.zip (train/val.jsonl) and copies question and passage unchanged; label true/false becomes
// ClassLabel ["False", "True"], i.e. 0/1. SuperGLUE's passages already begin with the title,
// "<title> -- <passage>" (datasets' super_glue dummy BoolQ/val.jsonl: "Ethanol fuel -- All biomass
// goes through ..."); Google's own files keep "title" apart, so it is joined here the same way.
// Hugging Face's `boolq` dataset (datasets/boolq/boolq.py) keeps question, answer and passage and drops
// the title: its records cannot give lm-eval's contexts, so an "answer" without "title" is refused.
//   Google's train/dev.jsonl        {question, title, answer: bool, passage}  title + " -- " + passage, answer
//   SuperGLUE's BoolQ/val.jsonl     {question, passage, idx, label: bool}     passage, label
//   Hugging Face super_glue/boolq   {question, passage, idx, label: 0 | 1}    passage, label
inline void boolq_item(const nlohmann::json& r, const std::string& where, MultipleChoiceItem& it) {
    const bool google = r.contains("answer");
    BITGRAD_CHECK(google || r.contains("label"),
                  where << ": missing field \"answer\" (Google's BoolQ files) or \"label\" (SuperGLUE's)");
    BITGRAD_CHECK(!(google && r.contains("label")),
                  where << ": fields \"answer\" and \"label\" together: Google's BoolQ files have \"answer\", "
                           "SuperGLUE's \"label\", never both");
    std::string passage = json_field<std::string>(r, "passage", where);
    if (google) {
        BITGRAD_CHECK(r.contains("title"),
                      where << ": missing field \"title\": lm-eval scores SuperGLUE's passages, \"<title> -- "
                               "<passage>\", which this record cannot rebuild (Hugging Face's boolq dataset drops "
                               "the title); use Google's dev.jsonl or SuperGLUE's BoolQ/val.jsonl");
        passage = json_field<std::string>(r, "title", where) + " -- " + passage;
        it.gold = json_field<bool>(r, "answer", where) ? 1 : 0;
    } else {
        BITGRAD_CHECK(!r.contains("title"), where << ": field \"title\" beside \"label\": SuperGLUE's passages begin "
                                                     "with their title already; give one of the two layouts");
        const auto& l = r["label"];
        const bool index = l.is_number_integer() && (l.get<int64_t>() == 0 || l.get<int64_t>() == 1);
        BITGRAD_CHECK(l.is_boolean() || index, where << ": field \"label\" must be true or false (SuperGLUE's files) "
                                                        "or 0 or 1 (Hugging Face's super_glue), got "
                                                     << bitgrad::detail::json_excerpt(l));
        it.gold = l.is_boolean() ? int64_t(l.get<bool>()) : l.get<int64_t>();
    }
    it.context = passage + "\nQuestion: " + json_field<std::string>(r, "question", where) + "?\nAnswer:";
    it.choices = {"no", "yes"};
    it.id = json_id(r, "idx", where);
}
}  // namespace detail

// One record of the task's official file (or its Hugging Face copy) -> an item. `label` is PIQA's
// answer from the separate labels file (-1: take the record's "label").
inline MultipleChoiceItem mc_item_from_record(const std::string& task, const nlohmann::json& r,
                                              const std::string& where, int64_t label = -1) {
    const McTaskId id = mc_task(task).id;
    BITGRAD_CHECK(r.is_object(), where << ": expected a JSON object, got " << bitgrad::detail::json_excerpt(r));
    MultipleChoiceItem it;
    it.source = where;
    const char* gold_field = nullptr;  // the record's field that gives the answer as an index
    switch (id) {
        case McTaskId::piqa:  // piqa.yaml: "Question: {{goal}}\nAnswer:", [sol1, sol2], label
            it.context = "Question: " + json_field<std::string>(r, "goal", where) + "\nAnswer:";
            it.choices = {json_field<std::string>(r, "sol1", where), json_field<std::string>(r, "sol2", where)};
            BITGRAD_CHECK(label >= 0 || r.contains("label"),
                          where << ": missing field \"label\": the official files keep PIQA's answers apart "
                                   "(train-labels.lst, valid-labels.lst): pass that file");
            it.gold = label >= 0 ? label : json_field<int64_t>(r, "label", where);
            gold_field = "label";
            it.id = detail::json_id(r, "id", where);
            break;
        case McTaskId::hellaswag: {  // hellaswag/utils.py process_docs
            const std::string ctx = json_field<std::string>(r, "ctx_a", where) + " " +
                                    detail::py_capitalize(json_field<std::string>(r, "ctx_b", where));
            it.context = detail::hellaswag_preprocess(json_field<std::string>(r, "activity_label", where) + ": " + ctx);
            for (const auto& e : detail::string_list(r, "endings", where))
                it.choices.push_back(detail::hellaswag_preprocess(e));
            const auto& l = detail::field_value(r, "label", where);  // int in the official files, "0".."3" on HF
            const std::string s = l.is_string() ? l.get<std::string>() : "";
            const bool digits = !s.empty() && s.size() < 10 &&
                                std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
            BITGRAD_CHECK(l.is_number_integer() || digits,
                          where << ": field \"label\" must be an integer or a string of digits, got "
                                << bitgrad::detail::json_excerpt(l));
            it.gold = digits ? std::stoll(s) : json_field<int64_t>(r, "label", where);
            gold_field = "label";
            it.id = detail::json_id(r, "ind", where);
            break;
        }
        case McTaskId::winogrande: {  // preprocess_winogrande.py, multiple_inputs
            const std::string sentence = json_field<std::string>(r, "sentence", where);
            const std::size_t blank = sentence.find('_');
            BITGRAD_CHECK(blank != std::string::npos, where << ": field \"sentence\" has no \"_\" to fill");
            for (const char* opt : {"option1", "option2"})
                it.contexts.push_back(sentence.substr(0, blank) + json_field<std::string>(r, opt, where));
            it.continuation = detail::py_strip(sentence.substr(blank + 1));
            const std::string answer = json_field<std::string>(r, "answer", where);
            BITGRAD_CHECK(answer == "1" || answer == "2",
                          where << ": field \"answer\" is \"" << answer << "\", expected \"1\" or \"2\"");
            it.gold = answer == "1" ? 0 : 1;
            it.id = detail::json_id(r, "qID", where);
            break;
        }
        case McTaskId::arc_easy:
        case McTaskId::arc_challenge:
        case McTaskId::openbookqa: {
            // arc_easy.yaml: "Question: {{question}}\nAnswer:"; openbookqa.yaml: question_stem alone.
            // Both: choices.text, choices.label.index(answerKey) (openbookqa: answerKey.lstrip()).
            const bool obqa = id == McTaskId::openbookqa;
            std::string question;
            std::vector<std::string> labels;
            const auto& q =
                detail::field_value(r, obqa && !r.contains("question") ? "question_stem" : "question", where);
            if (q.is_object()) {  // the AI2 files: question {stem, choices [{text, label}]}
                question = json_field<std::string>(q, "stem", where + ": question");
                detail::read_choices(detail::field_value(q, "choices", where + ": question"), "question.choices", where,
                                     it.choices, labels);
            } else {  // Hugging Face: question (ARC) or question_stem (OpenBookQA), choices {text, label}
                question = json_field<std::string>(r, obqa ? "question_stem" : "question", where);
                detail::read_choices(detail::field_value(r, "choices", where), "choices", where, it.choices, labels);
            }
            it.context = obqa ? question : "Question: " + question + "\nAnswer:";
            std::string key = json_field<std::string>(r, "answerKey", where);
            if (obqa) key = key.substr(detail::py_lstrip_begin(key));
            it.gold = detail::label_index(labels, key, "answerKey", where);
            it.id = detail::json_id(r, "id", where);
            break;
        }
        case McTaskId::boolq: detail::boolq_item(r, where, it); break;
    }
    BITGRAD_CHECK(!gold_field || (it.gold >= 0 && it.gold < it.num_choices()),
                  where << ": "
                        << (label >= 0 ? "the labels file gives "
                                       : "field \"" + std::string(gold_field ? gold_field : "") + "\" is ")
                        << it.gold << ", expected an index in [0, " << it.num_choices() << ")");
    validate_mc_item(it, where);
    return it;
}

// A whole file of the task's official JSONL. PIQA's answers may come from labels_path (one integer a
// line, as train-labels.lst), line i for record i.
inline std::vector<MultipleChoiceItem> convert_mc_task(const std::string& task, const std::string& path,
                                                       const std::string& labels_path = "") {
    const McTaskId id = mc_task(task).id;  // known?
    BITGRAD_CHECK(labels_path.empty() || id == McTaskId::piqa,
                  "multiple choice: a labels file is for piqa only (the task is " << task << ")");
    std::vector<int64_t> labels;
    if (!labels_path.empty()) {
        std::ifstream f(labels_path, std::ios::binary);
        BITGRAD_CHECK(f, "cannot open " << labels_path);
        std::string line;
        for (int64_t number = 1; std::getline(f, line); ++number) {
            const std::string s = detail::py_strip(line);
            if (s.empty()) continue;
            BITGRAD_CHECK(s == "0" || s == "1",
                          labels_path << ":" << number << ": label \"" << s << "\", expected 0 or 1");
            labels.push_back(s == "1");
        }
    }
    std::vector<MultipleChoiceItem> items;
    detail::for_each_jsonl(path, [&](const nlohmann::json& r, const std::string& where) {
        BITGRAD_CHECK(labels.empty() || items.size() < labels.size(),
                      where << ": more records than the " << labels.size() << " labels of " << labels_path);
        items.push_back(mc_item_from_record(task, r, where, labels.empty() ? -1 : labels[items.size()]));
    });
    BITGRAD_CHECK(!items.empty(), path << ": no records");
    BITGRAD_CHECK(labels.empty() || labels.size() == items.size(),
                  labels_path << ": " << labels.size() << " labels for the " << items.size() << " records of " << path);
    return items;
}

}  // namespace bitgrad::eval
