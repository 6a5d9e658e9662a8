# Included by ctest after the discovered tests (TEST_INCLUDE_FILES). The
# platform description runs first on every target: static registration order
# across translation units differs between toolchains (mingw runs constructors
# in reverse), so order it here instead. DEPENDS only orders; it does not skip
# the others if the description fails. (Plain list(FIND): ctest evaluates this
# without the project's policy settings.)
set(_keel_others ${keel-conformance_TESTS})
list(FIND _keel_others platform_description.print _keel_at)
if(NOT _keel_at EQUAL -1)
  list(REMOVE_ITEM _keel_others platform_description.print)
  if(_keel_others)
    set_tests_properties(${_keel_others} PROPERTIES DEPENDS platform_description.print)
  endif()
endif()

# The interruption tests that keep a target spinning need two CPUs each (the
# target and its sender): two of them at once on a 2-CPU runner take 20 s
# instead of 0.3 s. They never run concurrently with each other; lighter
# tests still run beside them.
foreach(_keel_t IN LISTS keel-conformance_TESTS)
  if(_keel_t MATCHES "^interrupt_(context|push_call|storm|mutual|request|exit|singlestep)\\.")
    set_tests_properties(${_keel_t} PROPERTIES RESOURCE_LOCK keel_busy_cpus)
  endif()
endforeach()

# Scheduler tests that measure CPU (parallel speed-up, idle CPU share, a busy
# P being drained) need the machine to themselves: on a 2-CPU runner any
# other test beside them halves what they measure. RUN_SERIAL keeps every
# other test out while they run.
foreach(_keel_t IN LISTS keel-conformance_TESTS)
  if(_keel_t MATCHES "^runtime_sched\\.(parallel_cpu_bound|idle_runtime|work_stealing)")
    set_tests_properties(${_keel_t} PROPERTIES RUN_SERIAL TRUE)
  endif()
endforeach()
