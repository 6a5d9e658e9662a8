# keel's own targets get strict warnings; third-party code does not. Only C
# and C++: the assembler (platform/arch) takes none of these flags.
function(keel_target_warnings target)
  if(MSVC)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:C,CXX>:/W4 /permissive->)
  else()
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:C,CXX>:-Wall -Wextra -Wpedantic -Wno-unused-parameter>)
  endif()
endfunction()
