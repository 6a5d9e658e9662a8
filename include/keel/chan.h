// Channels and select (Go's chan and select statement; docs/CHANNELS.md).
//
// keel::Chan<T> is a handle with shared ownership, like a Go channel value:
// copy it into goroutines freely; the channel lives while a handle does. A
// default-constructed Chan is the nil channel. Every operation works on
// goroutines and on plain OS threads alike (a blocked plain thread blocks its
// OS thread), and a channel may be shared between both.
//
// Go panics where keel throws keel::channel_closed: send on a closed channel
// (also when the channel is closed while the sender is blocked), close of a
// closed or nil channel.
//
// T must be an object type whose move constructor and destructor are
// noexcept: values are moved under the channel's lock, from the sender's
// frame straight into the receiver's (or through the buffer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <new>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>

namespace keel {

// Thrown by send on a closed channel and close of a closed or nil channel.
class channel_closed : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

template <class T>
class Chan;

namespace detail {

// How the type-erased core (core/chan.cpp) handles elements: it is compiled
// once and moves values through these.
struct ElemOps {
  size_t size;
  size_t align;
  void (*move)(void* dst, void* src) noexcept;  // placement-move-construct *dst from *src
  void (*destroy)(void* p) noexcept;
};

template <class T>
inline constexpr ElemOps elem_ops{
    sizeof(T), alignof(T),
    [](void* dst, void* src) noexcept { ::new (dst) T(std::move(*static_cast<T*>(src))); },
    [](void* p) noexcept { static_cast<T*>(p)->~T(); }};

// The runtime channel (Go's hchan), defined in core/chan.h.
struct hchan;

enum class ChanStatus : uint8_t { ok, would_block, closed };

// Create with refcount 1; retain/release count handles. The last release
// destroys buffered values and frees the channel.
hchan* chan_make(const ElemOps* ops, size_t cap);
void chan_retain(hchan* c) noexcept;
void chan_release(hchan* c) noexcept;

// send: moves from *elem only when it returns ok. A nil c blocks forever (or
// would_block when !block). closed: the channel is closed (or was closed
// while we waited).
ChanStatus chan_send(hchan* c, void* elem, bool block) noexcept;
// recv: on ok, *dst (raw storage for one element) holds a constructed value
// the caller owns. closed: closed and drained; *dst untouched.
ChanStatus chan_recv(hchan* c, void* dst, bool block) noexcept;
// False if c was already closed. c must not be nil.
bool chan_close(hchan* c) noexcept;
size_t chan_len(const hchan* c) noexcept;
size_t chan_cap(const hchan* c) noexcept;

// One case of a select. c nil: never ready. elem: the value to send (moved
// from only if this case is chosen), or raw storage to receive into.
struct SelectCase {
  hchan* c;
  void* elem;
  bool send;
};
// Go's selectgo. Returns the index of the chosen case, or -1 when !block and
// none is ready. *ok for a receive: a value was received into elem (false:
// closed and drained); for a send: false means the channel is closed. n == 0
// with block parks forever (select with no cases).
int chan_select(SelectCase* cases, int n, bool block, bool* ok) noexcept;

// Raw, suitably aligned storage for one T that the core constructs into.
template <class T>
struct Slot {
  alignas(T) unsigned char bytes[sizeof(T)];
  T* get() noexcept { return std::launder(reinterpret_cast<T*>(bytes)); }
  // Move the received value out and destroy the slot's copy.
  std::optional<T> take() noexcept {
    std::optional<T> r(std::move(*get()));
    get()->~T();
    return r;
  }
};

template <class T>
hchan* raw_chan(const Chan<T>& ch) noexcept;

struct Noop {
  template <class... A>
  void operator()(A&&...) const noexcept {}
};

}  // namespace detail

// A channel of T. See the file comment.
template <class T>
class Chan {
  static_assert(std::is_object_v<T> && !std::is_array_v<T> && !std::is_const_v<T>,
                "keel::Chan<T>: T must be a non-const object type");
  static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_destructible_v<T>,
                "keel::Chan<T>: T's move constructor and destructor must be noexcept (values move under the channel's lock)");

 public:
  using value_type = T;

  // The nil channel: send and recv block forever, try ops fail, close throws,
  // never ready in a select.
  constexpr Chan() noexcept = default;
  // A new channel holding up to cap buffered values (0: unbuffered, every
  // send waits for its receiver).
  explicit Chan(size_t cap) : c_(detail::chan_make(&detail::elem_ops<T>, cap)) {}

  Chan(const Chan& o) noexcept : c_(o.c_) {
    if (c_ != nullptr) detail::chan_retain(c_);
  }
  Chan(Chan&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  Chan& operator=(const Chan& o) noexcept {
    Chan(o).swap(*this);
    return *this;
  }
  Chan& operator=(Chan&& o) noexcept {
    Chan(std::move(o)).swap(*this);
    return *this;
  }
  ~Chan() {
    if (c_ != nullptr) detail::chan_release(c_);
  }
  void swap(Chan& o) noexcept { std::swap(c_, o.c_); }

  explicit operator bool() const noexcept { return c_ != nullptr; }
  // Identity: two handles are equal when they refer to the same channel
  // (all nil channels are equal).
  friend bool operator==(const Chan& a, const Chan& b) noexcept { return a.c_ == b.c_; }

  // Block until a receiver takes v (unbuffered) or v is in the buffer.
  // Throws channel_closed if the channel is closed, before or while waiting.
  void send(T v) const {
    if (detail::chan_send(c_, &v, true) == detail::ChanStatus::closed)
      throw channel_closed("send on closed channel");
  }

  // Block until a value arrives; nullopt once the channel is closed and
  // every buffered value has been received.
  std::optional<T> recv() const {
    detail::Slot<T> s;
    if (detail::chan_recv(c_, s.bytes, true) != detail::ChanStatus::ok) return std::nullopt;
    return s.take();
  }

  // Send without blocking (Go's select with a default): true if a waiting
  // receiver took v or it went into the buffer. v is moved from only on
  // success. Throws channel_closed on a closed channel. Never parks, so it
  // may be called from the scheduler's own context (a timer callback).
  bool try_send(T&& v) const {
    switch (detail::chan_send(c_, &v, false)) {
      case detail::ChanStatus::ok: return true;
      case detail::ChanStatus::would_block: return false;
      case detail::ChanStatus::closed: break;
    }
    throw channel_closed("send on closed channel");
  }
  bool try_send(const T& v) const
    requires std::is_copy_constructible_v<T>
  {
    T copy(v);
    return try_send(std::move(copy));
  }

  // Receive without blocking. A value if one was ready; otherwise nullopt,
  // and *closed (when given) tells why: true = the channel is closed and
  // drained (it will never yield a value again), false = it would block.
  // Never parks; callable from the scheduler's own context.
  std::optional<T> try_recv(bool* closed = nullptr) const {
    detail::Slot<T> s;
    const detail::ChanStatus st = detail::chan_recv(c_, s.bytes, false);
    if (closed != nullptr) *closed = st == detail::ChanStatus::closed;
    if (st != detail::ChanStatus::ok) return std::nullopt;
    return s.take();
  }

  // Close: blocked receivers get nullopt (after buffered values are
  // drained), blocked senders throw. Closing a closed or nil channel throws.
  void close() const {
    if (c_ == nullptr) throw channel_closed("close of nil channel");
    if (!detail::chan_close(c_)) throw channel_closed("close of closed channel");
  }

  // Buffered values now / buffer capacity (0 for nil and unbuffered).
  size_t len() const noexcept { return c_ != nullptr ? detail::chan_len(c_) : 0; }
  size_t cap() const noexcept { return c_ != nullptr ? detail::chan_cap(c_) : 0; }

  // for (T v : ch): receive until closed and drained. *it is an rvalue (the
  // received value is the loop's to keep), so move-only T works.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using reference = T&&;
    iterator() = default;
    explicit iterator(const Chan* ch) : ch_(ch) { ++*this; }
    T&& operator*() noexcept { return std::move(*v_); }
    iterator& operator++() {
      v_ = ch_->recv();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return !it.v_.has_value(); }

   private:
    const Chan* ch_ = nullptr;
    std::optional<T> v_;
  };
  iterator begin() const { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  friend detail::hchan* detail::raw_chan<T>(const Chan<T>&) noexcept;
  detail::hchan* c_ = nullptr;
};

template <class T>
Chan<T> make_chan(size_t cap = 0) {
  return Chan<T>(cap);
}

template <class T>
detail::hchan* detail::raw_chan(const Chan<T>& ch) noexcept {
  return ch.c_;
}

// ----------------------------------------------------------------- select
//
//   int i = keel::select(keel::on_recv(a, [](std::optional<int> v) { ... }),
//                        keel::on_send(b, x, [] { ... }),
//                        keel::on_default([] { ... }));
//
// Go's select statement: if some cases are ready, one of them chosen
// uniformly at random runs; else the default runs if there is one; else
// select blocks until a case can proceed. Returns the chosen argument's
// position (the default's position when it ran) after running its callback.
// Build the cases inside the select call: a send case refers to its value
// (an rvalue one is moved from only if that case is chosen, so a losing case
// leaves it with the caller).

namespace detail {

template <class T, class F>
struct RecvCase {
  static constexpr bool is_default = false;
  hchan* c;
  F f;
  Slot<T> slot;
  SelectCase core() noexcept { return {c, slot.bytes, false}; }
  void run(bool ok) {
    std::optional<T> v = ok ? slot.take() : std::nullopt;
    if constexpr (std::is_invocable_v<F&, std::optional<T>&&>) {
      f(std::move(v));
    } else {
      f();
    }
  }
};

template <class T, class F>
struct SendCase {
  static constexpr bool is_default = false;
  hchan* c;
  T* v;  // the caller's value (an rvalue argument of the full expression)
  F f;
  SelectCase core() noexcept { return {c, v, true}; }
  void run(bool ok) {
    if (!ok) throw channel_closed("send on closed channel");
    f();
  }
};

template <class T, class F>
struct SendCopyCase {  // on_send with an lvalue: the case sends a copy
  static constexpr bool is_default = false;
  hchan* c;
  T v;
  F f;
  SelectCase core() noexcept { return {c, &v, true}; }
  void run(bool ok) {
    if (!ok) throw channel_closed("send on closed channel");
    f();
  }
};

template <class F>
struct DefaultCase {
  static constexpr bool is_default = true;
  F f;
};

[[noreturn]] void select_block_forever() noexcept;

template <class C>
using case_t = std::remove_cvref_t<C>;

}  // namespace detail

// A receive case. f(std::optional<T>) gets the value, or nullopt when the
// channel is closed and drained; f may also take no argument.
template <class T, class F = detail::Noop>
detail::RecvCase<T, std::decay_t<F>> on_recv(const Chan<T>& ch, F&& f = {}) {
  return {detail::raw_chan(ch), std::forward<F>(f), {}};
}

// A send case; f() runs if the value was sent. A send case on a closed
// channel that is chosen throws channel_closed (as Go panics).
template <class T, class F = detail::Noop>
detail::SendCase<T, std::decay_t<F>> on_send(const Chan<T>& ch, std::type_identity_t<T>&& v, F&& f = {}) {
  return {detail::raw_chan(ch), &v, std::forward<F>(f)};
}
template <class T, class F = detail::Noop>
detail::SendCopyCase<T, std::decay_t<F>> on_send(const Chan<T>& ch, const std::type_identity_t<T>& v, F&& f = {}) {
  return {detail::raw_chan(ch), v, std::forward<F>(f)};
}

// Runs when no other case is ready: the select never blocks.
template <class F = detail::Noop>
detail::DefaultCase<std::decay_t<F>> on_default(F&& f = {}) {
  return {std::forward<F>(f)};
}

template <class... Cases>
int select(Cases&&... cases) {
  // static: the layout lambda below uses them without capturing (clang
  // rejects an uncaptured local constexpr in an array bound; GCC accepts).
  static constexpr int kArgs = static_cast<int>(sizeof...(Cases));
  static constexpr int kDefaults = (0 + ... + (detail::case_t<Cases>::is_default ? 1 : 0));
  static_assert(kDefaults <= 1, "keel::select: at most one on_default");
  static constexpr int kComm = kArgs - kDefaults;
  // Argument position of each communication case, and of the default.
  constexpr auto layout = [] {
    struct {
      int comm_arg[kComm > 0 ? kComm : 1];
      int default_arg;
    } l{};
    l.default_arg = -1;
    const bool is_default[] = {detail::case_t<Cases>::is_default..., false};
    int k = 0;
    for (int a = 0; a < kArgs; ++a) {
      if (is_default[a]) {
        l.default_arg = a;
      } else {
        l.comm_arg[k++] = a;
      }
    }
    return l;
  }();

  auto args = std::forward_as_tuple(cases...);
  auto run_default = [&]<size_t... I>(std::index_sequence<I...>) {
    (([&] {
       if constexpr (detail::case_t<Cases>::is_default) std::get<I>(args).f();
     }()),
     ...);
  };
  if constexpr (kComm == 0) {
    if constexpr (kDefaults == 0) {
      detail::select_block_forever();
    } else {
      run_default(std::index_sequence_for<Cases...>{});
      return layout.default_arg;
    }
  } else {
    detail::SelectCase sc[kComm];
    [&]<size_t... I>(std::index_sequence<I...>) {
      int k = 0;
      (([&] {
         if constexpr (!detail::case_t<Cases>::is_default) sc[k++] = std::get<I>(args).core();
       }()),
       ...);
    }(std::index_sequence_for<Cases...>{});
    bool ok = false;
    const int chosen = detail::chan_select(sc, kComm, kDefaults == 0, &ok);
    if (chosen < 0) {
      run_default(std::index_sequence_for<Cases...>{});
      return layout.default_arg;
    }
    const int arg = layout.comm_arg[chosen];
    [&]<size_t... I>(std::index_sequence<I...>) {
      (([&] {
         if constexpr (!detail::case_t<Cases>::is_default) {
           if (static_cast<int>(I) == arg) std::get<I>(args).run(ok);
         }
       }()),
       ...);
    }(std::index_sequence_for<Cases...>{});
    return arg;
  }
}

}  // namespace keel
