trl_add_test(test-core test-core.c LABELS core)
if(EMSCRIPTEN)
  # The same tests against the pthreads build, under Node's worker threads.
  add_executable(test-core-mt test-core.c)
  target_link_libraries(test-core-mt PRIVATE trillium_core_mt_private)
  target_link_options(test-core-mt PRIVATE ${TRL_TEST_LINK_OPTS} -sPTHREAD_POOL_SIZE=4)
  add_test(NAME test-core-mt COMMAND test-core-mt WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(test-core-mt PROPERTIES LABELS "core;threads" TIMEOUT 300)
endif()
