#include "queues/jetstream_dead_letters.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "json_parse.h"

namespace evrouted {

JetStreamDeadLetters::JetStreamDeadLetters(std::shared_ptr<nats::Link> link, std::string sink)
    : link_(std::move(link)), subject_(link_->dead_subject(sink)) {}

evroute::Status JetStreamDeadLetters::add(const evroute::Event& event, const evroute::Status& last,
                                          std::uint32_t attempts) {
  const std::string entry = dead_letter_entry(event, last, attempts);
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.ExpectStream = nullptr;
  jsPubAck* ack = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s = js_Publish(&ack, link_->js(), subject_.c_str(), entry.data(),
                                  static_cast<int>(entry.size()), &po, &code);
  if (ack) jsPubAck_Destroy(ack);
  if (s != NATS_OK) {
    write_errors_.fetch_add(1, std::memory_order_relaxed);
    return evroute::Status::unavailable("cannot store the dead letter in " + subject_ + ": " +
                                        nats::describe(s, code));
  }
  added_.fetch_add(1, std::memory_order_relaxed);
  return {};
}

evroute::Status JetStreamDeadLetters::scan(const std::function<bool(Stored&&)>& each) const {
  std::uint64_t next = 1;
  for (;;) {
    jsDirectGetMsgOptions o;
    jsDirectGetMsgOptions_Init(&o);
    o.Sequence = next;
    o.NextBySubject = subject_.c_str();
    natsMsg* raw = nullptr;
    const natsStatus s =
        js_DirectGetMsg(&raw, link_->js(), link_->dead_stream().c_str(), nullptr, &o);
    nats::MsgPtr msg(raw);
    if (s == NATS_NOT_FOUND) return {};  // past the last entry
    if (s != NATS_OK) {
      return evroute::Status::unavailable("cannot read the dead letters in " + subject_ + ": " +
                                          nats::describe(s));
    }
    const char* seq_text = nullptr;
    if (natsMsgHeader_Get(msg.get(), "Nats-Sequence", &seq_text) != NATS_OK || !seq_text) {
      return evroute::Status::unavailable("dead letters in " + subject_ +
                                          ": a message came without its sequence");
    }
    Stored stored;
    stored.seq = std::strtoull(seq_text, nullptr, 10);
    if (stored.seq < next) return {};  // never go backwards
    next = stored.seq + 1;
    const std::string_view data(natsMsg_GetData(msg.get()),
                                static_cast<std::size_t>(natsMsg_GetDataLength(msg.get())));
    if (!parse_json(data, &stored.entry, {kMaxRecordDepth}).empty() || !stored.entry.is_object()) {
      continue;  // not an entry evrouted wrote: not listed, not replayed
    }
    if (!each(std::move(stored))) return {};
  }
}

evroute::Result<std::uint64_t> JetStreamDeadLetters::count() const {
  jsOptions o;
  jsOptions_Init(&o);
  o.Stream.Info.SubjectsFilter = subject_.c_str();
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s =
      js_GetStreamInfo(&info, link_->js(), link_->dead_stream().c_str(), &o, &code);
  if (s != NATS_OK) {
    return evroute::Status::unavailable("cannot read the dead letters in " + subject_ + ": " +
                                        nats::describe(s, code));
  }
  std::uint64_t n = 0;
  if (info->State.Subjects) {
    for (int i = 0; i < info->State.Subjects->Count; ++i) n += info->State.Subjects->List[i].Msgs;
  }
  jsStreamInfo_Destroy(info);
  return n;
}

DeadLetterStore::Page JetStreamDeadLetters::list(std::uint64_t offset, std::uint64_t limit) const {
  Page page;
  if (auto n = count(); n.ok()) {
    page.total = *n;
  } else {
    spdlog::warn("{}", n.status().message());
    return page;
  }
  std::uint64_t index = 0;
  const evroute::Status s = scan([&](Stored&& stored) {
    if (index++ >= offset) page.entries.push_back(std::move(stored.entry));
    return page.entries.size() < limit;
  });
  if (!s.is_ok()) spdlog::warn("{}", s.message());
  return page;
}

evroute::Status JetStreamDeadLetters::take(const std::optional<std::set<std::string>>& ids,
                                           std::vector<evroute::Event>* events) {
  std::vector<Stored> wanted;
  evroute::Status s = scan([&](Stored&& stored) {
    const auto& id = stored.entry.contains("id") ? stored.entry["id"] : nlohmann::ordered_json();
    if (id.is_string() && (!ids || ids->count(id.get<std::string>()))) {
      wanted.push_back(std::move(stored));
    }
    return true;
  });
  if (!s.is_ok()) return s;
  for (Stored& w : wanted) {
    auto event = event_of_entry(w.entry);
    if (!event) continue;
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus d =
        js_DeleteMsg(link_->js(), link_->dead_stream().c_str(), w.seq, nullptr, &code);
    if (d != NATS_OK) continue;  // taken by another replica meanwhile, or unreachable: left there
    events->push_back(std::move(*event));
  }
  return {};
}

}  // namespace evrouted
