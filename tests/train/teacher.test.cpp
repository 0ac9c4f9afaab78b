// train::load_teacher: a teacher directory held in float or bf16, as TeacherStorage and the files say.
#include "helpers.hpp"

#include <bitgrad/train/teacher.hpp>

using namespace bitgrad;

namespace teacher_test {
nn::LlamaConfig config() {
    nn::LlamaConfig c;
    c.vocab_size = 37;
    c.hidden_size = 16;
    c.intermediate_size = 24;
    c.num_hidden_layers = 1;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 16;
    return c;
}
std::vector<float> logits(const train::Teacher<float>& t, const Tensor<int32_t>& ids) {
    const TeacherLogits<float> l = t(ids);
    std::vector<float> out(std::size_t(l.rows * l.vocab));
    l.fill(0, l.rows, out.data());
    return out;
}
}  // namespace teacher_test

TEST_CASE("load_teacher: float files stay float (same logits as the model) - half files load in bf16 - auto picks") {
    using namespace teacher_test;
    testing::TempDir dir("teacher");
    Rng rng(5);
    nn::DenseLlama<float> model(config(), rng);
    io::save_model(dir / "f32", model, model.config);
    io::save_hf_model(dir / "bf16", model, model.config, io::HfDtype::BF16);
    Tensor<int32_t> ids({2, 5});
    for (int64_t i = 0; i < ids.numel(); ++i) ids[i] = int32_t((7 * i + 3) % 37);
    const std::vector<float> expected = logits(train::llama_teacher<float>(model), ids);

    const train::LoadedTeacher f = train::load_teacher(dir / "f32", train::TeacherStorage::Auto);
    CHECK(f.storage == train::TeacherStorage::Float);
    CHECK(f.dense);
    CHECK_FALSE(f.frozen);
    CHECK(f.bytes() == doctest::Approx(4.0 * double(model.num_parameters())));
    CHECK(logits(f.teacher, ids) == expected);  // the same weights, the same code: bit for bit

    for (auto [path, storage] :
         {std::pair{"bf16", train::TeacherStorage::Auto}, std::pair{"f32", train::TeacherStorage::Bf16}}) {
        CAPTURE(path);
        const train::LoadedTeacher h = train::load_teacher(dir / path, storage);
        CHECK(h.storage == train::TeacherStorage::Bf16);
        CHECK(h.frozen);
        CHECK(h.bytes() < 0.6 * f.bytes());  // 2 bytes a matrix weight instead of 4
        const std::vector<float> got = logits(h.teacher, ids);
        REQUIRE(got.size() == expected.size());
        for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(expected[i]).epsilon(0.05));
    }
    // Float storage of a BF16 file: float weights holding the bf16 values.
    CHECK(train::load_teacher(dir / "bf16", train::TeacherStorage::Float).storage == train::TeacherStorage::Float);
}

TEST_CASE("load_teacher refuses a binarized model naming config.json") {
    testing::TempDir dir("teacher-binarized");
    Rng rng(6);
    auto c = teacher_test::config();
    c.binarized = true;
    nn::FbiLlama<float> student(c, rng);
    io::save_model(dir / "s", student, student.config);
    CHECK_THROWS_WITH_AS(
        train::load_teacher(dir / "s", train::TeacherStorage::Auto),
        doctest::Contains("s/config.json: \"binarized\" is true; the teacher must be a full-precision"), Error);
}

TEST_CASE("teacher storage names parse back - student_config keeps the teacher's shape") {
    CHECK(train::parse_teacher_storage("auto") == train::TeacherStorage::Auto);
    CHECK(train::parse_teacher_storage("bf16") == train::TeacherStorage::Bf16);
    CHECK(train::parse_teacher_storage("float") == train::TeacherStorage::Float);
    CHECK_FALSE(train::parse_teacher_storage("fp8"));
    const nn::LlamaConfig t = teacher_test::config();  // context 16
    const nn::LlamaConfig s = train::student_config(t, 64, Ste::Clipped);
    CHECK(s.max_position_embeddings == 64);
    CHECK(s.ste == Ste::Clipped);
    CHECK(s.binarized);
    CHECK(s.hidden_size == 16);
    CHECK(s.intermediate_size == 24);
    CHECK(train::student_config(t, 8, Ste::Identity).max_position_embeddings == 16);  // never shorter
}
