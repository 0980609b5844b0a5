// The model of docs/tutorial.md: custom modules with children, a skip connection and two inputs,
// trained to answer "is there a <shape> in this image?" for a shape named by the second input.
// Compiled and run by the test suite (docs_tutorial_model); exits 1 below 90% held-out accuracy.
#include <convtape.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

using namespace convtape;

// A residual block: two 3x3 convolutions with BatchNorm, added to the block's input.
class ResidualBlock : public nn::Module {
 public:
  explicit ResidualBlock(std::int64_t channels) {
    conv1 = register_module(
        "conv1", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(channels, channels, 3).padding(1)));
    bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(channels));
    conv2 = register_module(
        "conv2", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(channels, channels, 3).padding(1)));
    bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(channels));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = relu((*bn1)((*conv1)(x)));
    h = (*bn2)((*conv2)(h));
    return relu(h + x);  // the skip connection
  }
  std::string type_name() const override { return "ResidualBlock"; }

 private:
  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2;
};

// Two inputs: an image [N, 1, H, W] and a condition [N, 2] (one-hot: which shape to look for).
// The condition scales the features channel by channel before pooling.
class ConditionedNet : public nn::Module {
 public:
  ConditionedNet() {
    stem = register_module("stem", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 8, 3)));
    block = register_module("block", std::make_shared<ResidualBlock>(8));
    film = register_module("film", std::make_shared<nn::Linear>(2, 8));
    head = register_module("head", std::make_shared<nn::Linear>(8, 1));
  }
  Tensor forward_inputs(const std::vector<Tensor>& in) override {
    CT_CHECK(in.size() == 2, "ConditionedNet: expected (image, condition), got {} inputs",
             in.size());
    const Tensor& image = in[0];
    const Tensor& condition = in[1];
    Tensor h = (*block)(relu((*stem)(image)));                            // [N, 8, H - 2, W - 2]
    Tensor scale = (*film)(condition).reshape({image.size(0), 8, 1, 1});  // [N, 8, 1, 1]
    Tensor pooled = max(h * scale, {2, 3});                               // [N, 8]
    return (*head)(pooled).reshape({image.size(0)});                      // a logit per sample
  }
  std::string type_name() const override { return "ConditionedNet"; }

  std::shared_ptr<nn::Conv2d> stem;
  std::shared_ptr<ResidualBlock> block;
  std::shared_ptr<nn::Linear> film, head;
};

// A batch: each image holds a 3x3 square or a 3x3 plus at a random place; the condition asks for
// one of the two; the target is 1 when the asked-for shape is there.
struct Batch {
  Tensor image, condition, target;
};

Batch make_batch(std::int64_t n, Generator& gen) {
  constexpr std::int64_t kSize = 10;
  std::vector<float> image(static_cast<std::size_t>(n * kSize * kSize), 0.0f);
  std::vector<float> condition(static_cast<std::size_t>(n * 2), 0.0f), target;
  for (std::int64_t i = 0; i < n; ++i) {
    const bool square = gen.integer(0, 2) == 1, ask_square = gen.integer(0, 2) == 1;
    const std::int64_t top = gen.integer(0, kSize - 2), left = gen.integer(0, kSize - 2);
    for (std::int64_t r = 0; r < 3; ++r)
      for (std::int64_t c = 0; c < 3; ++c)
        if (square || r == 1 || c == 1)
          image[static_cast<std::size_t>((i * kSize + top + r) * kSize + left + c)] = 1.0f;
    condition[static_cast<std::size_t>(i * 2 + (ask_square ? 0 : 1))] = 1.0f;
    target.push_back(square == ask_square ? 1.0f : 0.0f);
  }
  return {from_vector(image, {n, 1, kSize, kSize}), from_vector(condition, {n, 2}),
          from_vector(target, {n})};
}

int main() {
  manual_seed(1);
  Generator gen(2);
  auto model = std::make_shared<ConditionedNet>();
  std::printf("%s\n", model->summary({Shape{1, 1, 10, 10}, Shape{1, 2}}).c_str());

  // A forward hook sees what a layer returns; here, how many of the block's outputs are zero.
  double zero_fraction = 0.0;
  auto hook = model->block->register_forward_hook(
      [&](nn::Module&, const std::vector<Tensor>&, const Tensor& out) {
        zero_fraction = mean(eq(out, 0.0)).item();
      });

  optim::Adam opt(model->parameters(), optim::AdamOptions(0.01));
  for (int step = 1; step <= 150; ++step) {
    const Batch b = make_batch(64, gen);
    Tensor loss = binary_cross_entropy_with_logits((*model)(b.image, b.condition), b.target);
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (step % 50 == 0)
      std::printf("step %d loss %.4f (block outputs at zero: %.2f)\n", step, loss.item(),
                  zero_fraction);
  }
  hook.remove();

  model->eval();
  NoGradGuard no_grad;
  const Batch test = make_batch(512, gen);
  const Tensor predicted = gt((*model)(test.image, test.condition), 0.0);
  const double accuracy = mean(eq(predicted, test.target)).item();
  std::printf("held-out accuracy %.3f\n", accuracy);

  // An error inside a child names the layer: a 3-channel image for the 1-channel stem.
  try {
    (*model)(zeros({1, 3, 10, 10}), zeros({1, 2}));
  } catch (const Error& e) {
    std::printf("%s\n", e.message().c_str());  // "... [in module 'stem' (Conv2d)]"
  }
  return accuracy >= 0.9 ? 0 : 1;
}
