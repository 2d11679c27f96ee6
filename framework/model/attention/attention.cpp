// The state hand-over of cross-layer KV sharing (see attention.h).
#include "model/attention/attention.h"

#include "core/error.h"

namespace attnlab::model {

namespace {
SharedKv& group_state(const AttnContext& ctx) {
  if (ctx.shared == nullptr)
    throw Error("a layer that reads its group's KV state (model.kv_share) was called without one");
  return *ctx.shared;
}
}  // namespace

std::vector<torch::Tensor> Attention::fresh_state(AttnContext& ctx,
                                                  const std::function<std::vector<torch::Tensor>()>& compute) const {
  if (reads_shared_) return group_state(ctx).fresh;
  auto fresh = compute();
  if (ctx.shared) ctx.shared->fresh = ctx.shared->all = fresh;
  return fresh;
}

std::vector<torch::Tensor> Attention::all_state(AttnContext& ctx, const std::vector<torch::Tensor>& fresh) const {
  if (reads_shared_) return group_state(ctx).all;
  auto all = ctx.cache ? ctx.cache->append(fresh) : fresh;
  if (ctx.shared) ctx.shared->all = all;
  return all;
}

}  // namespace attnlab::model
