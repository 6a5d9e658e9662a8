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
