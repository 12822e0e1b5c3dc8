// list.h: an intrusive doubly linked list (kernel: list_head). Not thread-safe: the owner of the
// list names the lock that guards it.
#pragma once

#include <cstddef>

namespace cgslab {

struct ListNode {
  ListNode* prev = this;
  ListNode* next = this;
  bool empty() const { return next == this; }
  void init() { prev = next = this; }
  void add_tail(ListNode* n) {
    n->prev = prev;
    n->next = this;
    prev->next = n;
    prev = n;
  }
  void del() {
    prev->next = next;
    next->prev = prev;
    init();
  }
  size_t size() const {
    size_t n = 0;
    for (const ListNode* p = next; p != this; p = p->next) ++n;
    return n;
  }
};

template <typename T, ListNode T::*M>
T* container(ListNode* n) {
  const size_t off = reinterpret_cast<size_t>(&(static_cast<T*>(nullptr)->*M));
  return reinterpret_cast<T*>(reinterpret_cast<char*>(n) - off);
}

#define CGSLAB_LIST_FOR_EACH_SAFE(pos, nxt, head) \
  for (ListNode *pos = (head)->next, *nxt = pos->next; pos != (head); pos = nxt, nxt = pos->next)

}  // namespace cgslab
